"""What an on-call engineer reads: one log line per request (JSON, or text with
`TUBETRACE_LOG_FORMAT=text`), the request id every answer carries (`X-Request-ID`), and the
request metrics (`api.metrics`).

A log line holds the time, the request id, the method, the route *template*
(`/v1/tubes/{tube_code}/trace`, never the path a caller typed), the status, the duration and the
key id: never a name, phone, ID number, path parameter or query string (an investigator's
`reason` is in the query). uvicorn's own access line prints the raw path with its query: `tubetrace
serve` turns it off, and `strip_query` cuts the query from it where uvicorn is run by hand."""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine import context

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,64}$")
_OURS = "_tubetrace_handler"
log = logging.getLogger("tubetrace.request")

# Filled by api.metrics: (route, method, status, seconds) for every answered request.
Observer = Callable[[str, str, int, float], None]


def request_id_of(scope: Scope) -> str:
    """The caller's own `X-Request-ID` when it is at most 64 safe characters, else a new one."""
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER and _SAFE_ID.match(value):
            return str(value.decode("ascii"))
    return uuid.uuid4().hex


_CONVERTER = re.compile(r"\{(\w+):\w+\}")


def route_of(scope: Scope) -> str | None:
    """The matched route's template; None for a path no route matched (a typed path may hold
    anything, personal data included, so it is not logged)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return _CONVERTER.sub(r"{\1}", path)  # `{tube_code:path}` is `{tube_code}`
    if scope.get("path", "").startswith("/console/static/"):
        return "/console/static/{file}"
    return None


class RequestLog:
    """Outermost middleware: gives the request its id (scope state, the engine's context for
    the audit entries it writes, the answer's `X-Request-ID`), times it, logs one line and
    counts it. A request that ends in an unhandled exception is logged as the 500 it becomes
    (its `error_id` is the request id: api.errors)."""

    def __init__(self, app: ASGIApp, observe: Observer | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = rid
        token = context.request_id.set(rid)
        header = (REQUEST_ID_HEADER, rid.encode("ascii"))
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [h for h in message.get("headers", []) if h[0] != REQUEST_ID_HEADER]
                message["headers"] = [*headers, header]
            await send(message)

        failed = False
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            failed, status = True, 500
            raise
        finally:
            took = time.perf_counter() - start
            self._done(scope, rid, status, took, failed)
            context.request_id.reset(token)

    def _done(self, scope: Scope, rid: str, status: int, took: float, failed: bool) -> None:
        route = route_of(scope)
        method = str(scope.get("method", ""))
        who = scope.get("state", {}).get("principal")
        fields: dict[str, Any] = {
            "request_id": rid,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(took * 1000, 2),
            "key_id": getattr(who, "key_id", None),
        }
        if status >= 500:
            fields["error_id"] = rid
        level = logging.ERROR if failed else logging.INFO
        log.log(level, "request", extra={"fields": fields})
        if self.observe is not None:
            self.observe(route or "unmatched", method, status, took)


# ---------------------------------------------------------------- formatting


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the request id of the request
    the line was written in (if any), the process id, and the record's structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": os.getpid(),
        }
        rid = context.current_request_id()
        if rid is not None:
            line["request_id"] = rid
        line.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The same content, readable in a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = dict(getattr(record, "fields", None) or {})
        if record.name == "tubetrace.request":
            text = (
                f"{fields.pop('method', '')} {fields.pop('route', None) or '(no route)'} "
                f"{fields.pop('status', '')} {fields.pop('duration_ms', '')} ms"
            )
        else:
            text = record.getMessage()
        rid = fields.pop("request_id", None) or context.current_request_id()
        extra = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        line = f"{_time(record)} {record.levelname:<7} {text}"
        line += f" {extra}" if extra else ""
        line += f" request_id={rid}" if rid else ""
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def formatter(log_format: str) -> logging.Formatter:
    return TextFormatter() if log_format == "text" else JsonFormatter()


class StripQuery(logging.Filter):
    """uvicorn's access line without the query string (it may carry a `reason`, or anything a
    caller typed). Its arguments: client address, method, full path, HTTP version, status."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (args[0], args[1], args[2].split("?", 1)[0], *args[3:])
        return True


def setup_logging(log_format: str) -> None:
    """The `tubetrace` loggers write through one handler on stderr in the chosen format
    (once per process; `tubetrace serve` configures uvicorn's loggers the same way), and
    uvicorn's access line, where it is on, loses its query string."""
    root = logging.getLogger("tubetrace")
    if not any(getattr(h, _OURS, False) for h in root.handlers):
        handler = logging.StreamHandler()
        setattr(handler, _OURS, True)
        root.addHandler(handler)
        root.propagate = False
    for h in root.handlers:
        if getattr(h, _OURS, False):
            h.setFormatter(formatter(log_format))
    if root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, StripQuery) for f in access.filters):
        access.addFilter(StripQuery())


def uvicorn_log_config(log_format: str) -> dict[str, Any]:
    """uvicorn's own lines (start, stop, errors) in the same format, for `tubetrace serve`."""
    fmt = "api.observe.TextFormatter" if log_format == "text" else "api.observe.JsonFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": {"()": fmt}},
        "filters": {"strip_query": {"()": "api.observe.StripQuery"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "main",
                "stream": "ext://sys.stderr",
                "filters": ["strip_query"],
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }
