"""Response headers for every answer of the API."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class NoStore:
    """`Cache-Control: no-store` on every `/v1` answer: they may carry personal data, and no
    browser, proxy or disk cache may keep them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return

        async def with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"
                ]
                headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_header)
