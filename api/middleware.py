"""Response headers for every answer under a path prefix (the API's `/v1`, the console)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]


class PathHeaders:
    """Set `headers(path)` on every answer whose path starts with `prefix`, replacing any
    header of the same name the app set."""

    def __init__(self, app: ASGIApp, prefix: str, headers: Callable[[str], Headers]) -> None:
        self.app = app
        self.prefix = prefix
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        extra = self.headers(scope["path"])
        names = {name for name, _ in extra}

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = kept + extra
            await send(message)

        await self.app(scope, receive, with_headers)


class NoStore(PathHeaders):
    """`Cache-Control: no-store` on every `/v1` answer: they may carry personal data, and no
    browser, proxy or disk cache may keep them."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, "/v1/", lambda _: [(b"cache-control", b"no-store")])
