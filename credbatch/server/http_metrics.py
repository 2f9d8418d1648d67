"""ASGI middleware recording ``http.server.request.duration`` for every request served.

Used by the two HTTP processes, the public endpoints and the signer.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from credbatch.metrics import HTTP_SERVER_DURATION

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetrics:
    """Times each HTTP request; labelled by method, route template and status only."""

    def __init__(self, app: App) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the server answers when the app fails before responding

        async def send_and_watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, send_and_watch)
        finally:
            # Starlette's router leaves the matched route in the scope: its template, such as
            # /c/{id}, is the label; the path itself holds tokens and ids.
            route = getattr(scope.get("route"), "path", None)
            method = scope.get("method", "")
            HTTP_SERVER_DURATION.record(
                time.perf_counter() - start,
                {
                    "http.request.method": method if method in _METHODS else "_OTHER",
                    "http.route": route if isinstance(route, str) else "unmatched",
                    "http.response.status_code": status,
                },
            )
