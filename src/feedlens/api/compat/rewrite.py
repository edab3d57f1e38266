"""An ASGI middleware base that turns feedlens's own problem+json answers into a cloud API's error shape
on that API's paths, for answers made before its router runs (the app-wide size cap and NUL guard)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feedlens.api.problems import PROBLEM_JSON


class ProblemRewriter:
    """Subclasses say which requests are theirs (`owns`) and how a problem becomes their error
    (`convert`); every other request passes through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def owns(self, scope: Scope) -> bool:
        raise NotImplementedError

    def convert(self, status: int, body: bytes) -> Response:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.owns(scope):
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def rewrite(message: Message) -> None:
            if message["type"] == "http.response.start":
                if Headers(raw=message["headers"]).get("content-type", "").startswith(PROBLEM_JSON):
                    held["start"] = message
                    return
            elif message["type"] == "http.response.body" and "start" in held:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self.convert(held["start"]["status"], b"".join(chunks))(scope, receive, send)
                return
            await send(message)

        await self.app(scope, receive, rewrite)
