"""The API's one error boundary: every error answer is JSON `{"error", "message"}`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import models
from engine.errors import (
    DatabaseUnavailable,
    Forbidden,
    NotFound,
    TransitionError,
    TubetraceError,
)

MAX_BODY_BYTES = 8 * 1024 * 1024

OPENAPI_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": models.Error, "description": text}
    for code, text in (
        (401, "no key, or an unknown or revoked key"),
        (403, "the key's role may not"),
        (404, "absent, or outside the key's district"),
        (409, "a transition not allowed"),
        (413, "over a size limit; nothing stored"),
        (422, "invalid request"),
        (429, "too many requests for this key"),
        (503, "Neo4j does not answer"),
    )
}


class BodyLimit:
    """Refuse a request body over the limit whole, before anything is parsed or written."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _BodyTooLarge:
            await _too_large(self.limit, send)


class _BodyTooLarge(Exception):
    pass


async def _too_large(limit: int, send: Send) -> None:
    body = JSONResponse(
        status_code=413,
        content={
            "error": "payload_too_large",
            "message": f"The request body is larger than {limit} bytes; nothing was stored. "
            "Send it in smaller batches.",
        },
    )
    await body({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def install(app: FastAPI) -> None:
    """Register the body limit and every exception handler on `app`."""
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"error": "not_found", "message": str(exc)})

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return JSONResponse(status_code=403, content={"error": "forbidden", "message": str(exc)})

    @app.exception_handler(TransitionError)
    async def conflict(_: Request, exc: TransitionError) -> JSONResponse:
        return JSONResponse(status_code=409, content={"error": "conflict", "message": str(exc)})

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        names = {
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            409: "conflict",
            413: "payload_too_large",
            422: "invalid",
            429: "rate_limited",
        }
        return JSONResponse(
            status_code=exc.status_code,
            headers=exc.headers,
            content={"error": names.get(exc.status_code, "error"), "message": str(exc.detail)},
        )

    @app.exception_handler(models.LimitExceeded)
    async def limit(_: Request, exc: models.LimitExceeded) -> JSONResponse:
        return JSONResponse(
            status_code=413, content={"error": "limit_exceeded", "message": str(exc)}
        )

    @app.exception_handler(DatabaseUnavailable)
    async def unavailable(_: Request, exc: DatabaseUnavailable) -> JSONResponse:
        return JSONResponse(
            status_code=503, content={"error": "database_unavailable", "message": str(exc)}
        )

    @app.exception_handler(TubetraceError)
    async def other(_: Request, exc: TubetraceError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"error": "invalid", "message": str(exc)})

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            status_code=422,
            content={
                "error": "invalid_request",
                "message": f"The request is not valid at {where or 'body'}: "
                f"{first.get('msg', 'invalid')}. Nothing was stored.",
                "details": [
                    {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg")}
                    for e in exc.errors()[:20]
                ],
            },
        )
