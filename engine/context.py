"""What the current request is, for whatever it writes on its way (an audit entry): set by the
API's request middleware, unset in the CLI. Context variables follow a request into the worker
threads it runs in (anyio copies the context), never into another request."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("tubetrace_request_id", default=None)


def current_request_id() -> str | None:
    return request_id.get()
