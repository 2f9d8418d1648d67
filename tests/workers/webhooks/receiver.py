"""A real HTTP webhook receiver (Starlette on uvicorn, port 0) that records every request.

Each path answers from its own script of responses, in order, then 200 for ever after; a
response may first wait (to hold a request in flight). The receiver counts the most requests
it held unanswered at once on each path.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    def __init__(self) -> None:
        self.base_url = ""
        self.received: dict[str, list[Received]] = defaultdict(list)
        self.scripts: dict[str, list[Answer]] = defaultdict(list)
        self.arrived = asyncio.Condition()
        self.in_flight: dict[str, int] = defaultdict(int)
        self.most_in_flight: dict[str, int] = defaultdict(int)

    def script(self, path: str, *answers: Answer) -> None:
        self.scripts[path].extend(answers)

    def url(self, path: str) -> str:
        return self.base_url + path

    async def wait_for(self, path: str, count: int, timeout: float = 20.0) -> list[Received]:
        """The first ``count`` requests to ``path``, waiting for them to arrive."""
        async with asyncio.timeout(timeout), self.arrived:
            await self.arrived.wait_for(lambda: len(self.received[path]) >= count)
        return self.received[path][:count]

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        body = await request.body()
        async with self.arrived:
            self.received[path].append(
                Received(path, dict(request.headers), body, time.monotonic())
            )
            self.arrived.notify_all()
        script = self.scripts[path]
        answer = script.pop(0) if script else Answer()
        self.in_flight[path] += 1
        self.most_in_flight[path] = max(self.most_in_flight[path], self.in_flight[path])
        try:
            if answer.delay:
                await asyncio.sleep(answer.delay)
        finally:
            self.in_flight[path] -= 1
        return Response(status_code=answer.status, headers=answer.headers)


@asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = Starlette(routes=[Route("/{path:path}", receiver._handle, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    _, port = sock.getsockname()
    receiver.base_url = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
