"""The web console under /console/: server-rendered pages over the same engine calls as the
API, with its own router, templates and static files (vendored from pinned npm packages)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from api.console import clusters
from api.console.pages import ConsoleError, LoginRequired, error_page, login_redirect, router
from api.errors import DENIED, ERRORS, audit_denied
from api.middleware import Headers, PathHeaders

STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'"
)


def _console_headers(path: str) -> Headers:
    """CSP and friends on every answer under /console/ (pages, data, static files, errors).
    Pages hold personal data: never cached. Static files: an hour."""
    static = path.startswith("/console/static/")
    return [
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"x-frame-options", b"DENY"),
        (b"cache-control", b"public, max-age=3600" if static else b"no-store"),
    ]


def console_error_page(
    request: Request, status: int, message: str, headers: dict[str, str]
) -> Response | None:
    """A console page's error (an outage, a form that does not validate, an unknown page) as
    a page, with the API's status and code word; its data paths keep the JSON envelope."""
    path = request.url.path
    if not path.startswith("/console/") or path.startswith(("/console/data/", "/console/static/")):
        return None
    word = ERRORS.get(status, ERRORS[500 if status >= 500 else 400])[0]
    page = error_page(request, ConsoleError(status, word, message))
    page.headers.update(headers)
    return page


class ConsoleHeaders(PathHeaders):
    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, "/console", _console_headers)


def mount(app: FastAPI) -> None:
    """Everything the console needs, added to the API app in one call."""
    app.state.error_pages = console_error_page
    app.include_router(router)
    app.include_router(clusters.router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    app.add_middleware(ConsoleHeaders)

    @app.exception_handler(ConsoleError)
    async def console_error(request: Request, exc: ConsoleError) -> Response:
        # A refusal (another district's page, a role's page, a stale form) is audited as the
        # API audits its own: the same `denied` entry, marked as the console's.
        if exc.status in DENIED:
            audit_denied(request, exc.status, exc.message, how="console")
        return error_page(request, exc)

    @app.exception_handler(LoginRequired)
    async def console_login(request: Request, _: LoginRequired) -> Response:
        return login_redirect(request)
