"""ASGI middleware: request size cap (413 before the body is buffered) and Prometheus metrics."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feedlens.api.problems import problem_response
from feedlens.api.state import Metrics
from feedlens.core.nesting import MAX_DEPTH, json_depth


class _TooLargeError(Exception):
    pass


class RequestGuard:
    """Refuse bodies over `max_bytes` (by Content-Length at once, while streaming for chunked ones) and
    NUL bytes in the path or query, which PostgreSQL cannot compare against and would turn into a 500."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
        if b"%00" in raw or b"\x00" in raw:
            await problem_response(422, "invalid_request", "NUL in the URL")(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        detail = f"request body over the limit of {self.max_bytes} bytes"
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await problem_response(413, "request_too_large", detail)(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLargeError
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLargeError:
            if not started:
                await problem_response(413, "request_too_large", detail)(scope, receive, send)


class JsonDepthGuard:
    """Refuse bodies that nest deeper than `core.nesting.MAX_DEPTH` with 400 `too_deeply_nested`,
    before any parser sees them (Python's recurse: 1,000 brackets would be a RecursionError). Sits inside
    RequestGuard, so the body it buffers is already within the size limit; the cloud APIs' rewriters
    outside turn the problem into their own error shapes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"").lower()
        if content_type.startswith(b"multipart/"):  # uploads: their one JSON field is checked where parsed
            await self.app(scope, receive, send)
            return
        # Every other body is checked, whatever its Content-Type says: routes parse JSON from bodies sent
        # as text/plain or with no type at all, and YAML flow style nests with the same brackets.
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay(b"".join(chunks), message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_depth(body) > MAX_DEPTH:
            detail = f"the JSON body nests more than {MAX_DEPTH} levels deep"
            await problem_response(400, "too_deeply_nested", detail)(scope, receive, send)
            return
        await self.app(scope, _replay(body, None, receive), send)


def _replay(body: bytes, then: Message | None, receive: Receive) -> Receive:
    """A receive() that hands the buffered body over once, then `then` (a disconnect seen while
    buffering), then whatever the client sends next."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    if then is not None:
        pending.append(then)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        finally:
            route: Any = scope.get("route")
            # the route template, not the path: ids in paths would explode label cardinality
            name = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(scope["method"], name, str(status["code"])).inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - start)
