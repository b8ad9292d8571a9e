"""The API's one error boundary: every error answer, whatever its status, is JSON
`{"error": CODE_WORD, "message": SENTENCE}`, with one code word per status (`ERRORS`)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import models
from api.observe import route_of
from engine.access.keys import NOBODY, KeyCheck, claimed_key_id
from engine.errors import (
    CursorExpired,
    DatabaseUnavailable,
    Forbidden,
    InputError,
    NotFound,
    TransitionError,
    TubetraceError,
)
from engine.ops import backup
from engine.usecases import reads

log = logging.getLogger("tubetrace.api")

# An interface of pages renders its own error answers: (request, status, message, headers) ->
# a page, or None where the path is not its own (the envelope then).
ErrorPages = Callable[[Request, int, str, dict[str, str]], Response | None]

MAX_BODY_BYTES = 8 * 1024 * 1024
RETRY_AFTER_S = 5  # a restarting Neo4j is usually back within seconds

# The one table: status -> (code word, when). The OpenAPI document lists each of them.
ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "the request cannot be read (e.g. a body that is not parseable)"),
    401: ("unauthorized", "no key, or an unknown or revoked key"),
    403: ("forbidden", "the key's role may not do this"),
    404: ("not_found", "absent, or outside the key's district; also an unknown path"),
    405: ("method_not_allowed", "the path exists but not with this method"),
    409: ("conflict", "a task transition the lifecycle does not allow from the current status"),
    410: (
        "cursor_expired",
        "a feed cursor older than the oldest kept event (the retention window deleted what "
        "followed it): resynchronise, then read on from the answer's oldest_cursor",
    ),
    413: ("payload_too_large", "over a size limit (body, batch or string); nothing stored"),
    422: ("invalid_input", "a parameter or body that does not validate; nothing stored"),
    429: ("rate_limited", "too many requests from this key or address; see Retry-After"),
    500: ("internal_error", "a bug; the answer's error_id is in the server log"),
    503: ("database_unavailable", "Neo4j does not answer; retry after Retry-After seconds"),
}


def error_answer(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    word = ERRORS.get(status, ERRORS[500 if status >= 500 else 400])[0]
    return JSONResponse(
        status_code=status,
        content={"error": word, "message": message, **extra},
        headers=headers,
    )


def _header(name: str) -> dict[str, Any]:
    return {name: {"schema": {"type": "string"}, "description": f"the {name} header"}}


OPENAPI_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {
        "model": models.Error,
        "description": f"`{word}`: {when}",
        **({"headers": _header("Retry-After")} if code in (429, 503) else {}),
    }
    for code, (word, when) in ERRORS.items()
}


class BodyLimit:
    """Refuse a request body over the limit whole (413), before anything is parsed or written,
    whether its length is declared or it comes chunked."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit, scope, send)
            return
        seen = 0
        over = False
        started = False

        async def limited() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    raise _BodyTooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if over:  # the app's own answer to the broken read is replaced by the 413
                return
            started = True
            await send(message)

        try:
            await self.app(scope, limited, guarded)
        except _BodyTooLarge:
            pass
        if over and not started:
            await _too_large(self.limit, scope, send)


class _BodyTooLarge(Exception):
    pass


async def _too_large(limit: int, scope: Scope, send: Send) -> None:
    answer = error_answer(
        413,
        f"The request body is larger than {limit} bytes; nothing was stored. "
        "Send it in smaller batches.",
    )
    await answer(scope, _empty_receive, send)


async def _empty_receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


DENIED = (401, 403, 404, 409)  # refusals that leave an audit entry

# The engine's refusals and the status each answers (the console answers the same).
ENGINE_STATUS: dict[type[TubetraceError], int] = {
    NotFound: 404,
    CursorExpired: 410,
    Forbidden: 403,
    TransitionError: 409,
    InputError: 422,
}


def engine_status(exc: TubetraceError) -> int | None:
    """The status of an engine refusal; None for any other engine error (a 500 or a 503)."""
    return next((s for t, s in ENGINE_STATUS.items() if isinstance(exc, t)), None)


def audit_denied(request: Request, status: int, message: str, *, how: str | None = None) -> None:
    """A refused attempt is audited like an answered one: who, what it asked for, and why it
    was refused. The entry names a key only when it was proven (it exists and its secret
    matched, even if revoked); what a caller typed instead is `claimed_key_id`, unverified.
    Unknown paths asked without a key are not audited (they are not attempts at anything).
    `how`: the interface, when not the API (the console)."""
    writer = getattr(request.app.state, "audit", None)
    who = getattr(request.state, "principal", None)
    check: KeyCheck | None = getattr(request.state, "key_check", None)
    if writer is None or (who is None and check is None and status != 401):
        return
    claimed = None
    if who is None and check is not None:
        claimed = None if check.verified is not None else check.claimed_key_id
        who = check.verified or NOBODY
        message = f"{message} ({check.why.replace('_', ' ')})"
    if who is None:  # no key at all, or one never looked up
        presented = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        claimed = claimed_key_id(presented) if presented else None
        who = NOBODY
    if how:
        message = f"{message} ({how})"
    reads.refused(
        writer,
        who,
        asked=f"{request.method} {request.url.path}",
        status=status,
        message=message,
        claimed_key_id=claimed,
    )


def install(app: FastAPI) -> None:
    """Register the body limit and every exception handler on `app`."""
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)

    def answer(
        request: Request,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> Response:
        """The envelope; or a page, where an interface of pages (the console) renders its own
        (`app.state.error_pages(request, status, message, headers)`, None where it does not)."""
        pages: ErrorPages | None = getattr(request.app.state, "error_pages", None)
        page = pages(request, status, message, headers or {}) if pages is not None else None
        return page if page is not None else error_answer(status, message, headers, **extra)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "No such path; see /docs for the endpoints."
        elif exc.status_code == 405:
            message = "This path does not take that method; see /docs."
        elif exc.status_code == 400:
            message = f"The request cannot be read: {message}. Nothing was stored."
        if exc.status_code in DENIED:
            audit_denied(request, exc.status_code, message)
        return answer(request, exc.status_code, message, dict(exc.headers or {}))

    @app.exception_handler(models.LimitExceeded)
    async def limit(request: Request, exc: models.LimitExceeded) -> Response:
        return answer(request, 413, str(exc))

    @app.exception_handler(DatabaseUnavailable)
    async def unavailable(request: Request, exc: DatabaseUnavailable) -> Response:
        message, retry = str(exc), RETRY_AFTER_S
        settings = getattr(request.app.state, "settings", None)
        # A backup or restore of this home has the database stopped: say so, and when to retry.
        note = backup.maintenance(settings.home) if settings is not None else None
        if note is not None:
            message, retry = f"{message} {note.sentence()}", note.retry_after_s()
        return answer(request, 503, message, {"Retry-After": str(retry)})

    @app.exception_handler(TubetraceError)
    async def engine_error(request: Request, exc: TubetraceError) -> Response:
        status = engine_status(exc)
        if status is None:
            return _internal(request, exc)
        if status in DENIED:
            audit_denied(request, status, str(exc))
        if isinstance(exc, CursorExpired):
            return answer(request, status, str(exc), oldest_cursor=exc.oldest_cursor)
        return answer(request, status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        # A check of ours raised ValueError: its sentence, without pydantic's "Value error, ".
        msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        stored = " Nothing was stored." if request.method not in ("GET", "HEAD") else ""
        return answer(
            request,
            422,
            f"The request is not valid at {where or 'body'}: {msg.rstrip('.')}.{stored}",
            details=[
                {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg")}
                for e in exc.errors()[:20]
            ],
        )

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        return _internal(request, exc)


def _internal(request: Request, exc: BaseException) -> JSONResponse:
    # The error id is the request's id (api.observe): the same in the answer, its
    # X-Request-ID, the request's log line and the audit entries it wrote.
    error_id = getattr(request.state, "request_id", None) or uuid.uuid4().hex
    log.error(
        "internal_error error_id=%s",
        error_id,
        exc_info=exc,
        extra={
            "fields": {
                "error_id": error_id,
                "method": request.method,
                "route": route_of(request.scope),
            }
        },
    )
    return error_answer(
        500,
        f"An internal error occurred; nothing more can be said here. Quote error id {error_id}.",
        # Answered outside the header middleware: no cache may keep it either.
        {"Cache-Control": "no-store", "X-Request-ID": error_id},
        error_id=error_id,
    )
