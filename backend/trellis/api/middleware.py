"""Pure ASGI middlewares of the API: a request body limit and request timing."""

from __future__ import annotations

import time
from contextlib import suppress

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trellis.metrics import Metrics

__all__ = ["BodyLimit", "RequestMetrics"]


class BodyLimit:
    """Pure ASGI middleware refusing request bodies over ``max_bytes`` with 413.

    Checked on the declared length and again while reading, so a chunked body cannot slip by.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request through while its body stays under the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        received = 0
        over = started = False

        async def bounded() -> Message:
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise _BodyTooLarge
            return message

        async def guarded(message: Message) -> None:
            # Past the limit the app's own answer (FastAPI makes it a 400) gives way to the 413.
            nonlocal started
            if over and not started:
                return
            started = True
            await send(message)

        with suppress(_BodyTooLarge):
            await self.app(scope, bounded, guarded)
        if over and not started:
            await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body over {self.max_bytes} bytes"}, status_code=413
        )
        await response({"type": "http"}, _no_receive, send)


class _BodyTooLarge(Exception):
    pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


class RequestMetrics:
    """Pure ASGI middleware timing each request by its route template.

    The template (``/catalog/entities.yaml``), never the raw path or query, is the label,
    so hostile paths cannot blow up the metric's cardinality and tokens never reach it.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request through and observe its duration and status."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = str(getattr(route, "path", "unmatched"))
            self.metrics.request_seconds.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
