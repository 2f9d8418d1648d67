"""gRPC health follows PostgreSQL: NOT_SERVING while it is unreachable, SERVING once it is back.

The service's pool reaches the real PostgreSQL through a TCP proxy started by the test, which
can cut the database off (close every connection, refuse new ones) and restore it; the server
keeps running throughout and recovers without help.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.server.health import DependencyCheck, DependencyHealth, postgres_check
from credbatch.server.runner import GrpcApp
from services.templates.main import SERVICE_NAME, service_specs

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target until cut; restore listens on the same port."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()
            self._writers.discard(writer)

    async def cut(self) -> None:
        """Refuse new connections and drop every open one."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def restore(self) -> None:
        await self.start()


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}@127.0.0.1:{port}" if parts.username else f"127.0.0.1:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@pytest.fixture
async def proxy(settings: Settings) -> AsyncIterator[TcpProxy]:
    target = urlsplit(settings.app_database_url)
    running = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await running.start()
    yield running
    with contextlib.suppress(AssertionError):
        await running.cut()


def _app(settings: Settings, pool: asyncpg.Pool) -> GrpcApp:
    """The TemplateService whose health follows ``pool``, checked every 0.2 s."""
    checks = [postgres_check(pool)]
    return GrpcApp(settings, service_specs(settings, pool), checks, check_interval=0.2)


async def _wait_for(channel: grpc.aio.Channel, service: str, wanted: int) -> float:
    """Seconds until Check(service) answers ``wanted`` (fails after 15 s)."""
    stub = health_pb2_grpc.HealthStub(channel)
    started = time.monotonic()
    while True:
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        if reply.status == wanted:
            return time.monotonic() - started
        assert time.monotonic() - started < 15, f"{service!r} stayed {reply.status}"
        await asyncio.sleep(0.1)


async def test_health_turns_not_serving_while_postgres_is_cut_off_and_back_after(
    settings: Settings, proxy: TcpProxy
) -> None:
    pool = await create_pool(_via(settings.app_database_url, proxy.port), max_size=2)
    app = _app(settings, pool)
    port = await app.start("127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        for service in ("", SERVICE_NAME):
            await _wait_for(channel, service, SERVING)
        await proxy.cut()
        for service in ("", SERVICE_NAME):
            await _wait_for(channel, service, NOT_SERVING)
        # Still NOT_SERVING a few checks later: the pool cannot reconnect on its own yet.
        await asyncio.sleep(1)
        await _wait_for(channel, "", NOT_SERVING)
        await proxy.restore()
        for service in ("", SERVICE_NAME):
            await _wait_for(channel, service, SERVING)
    finally:
        await channel.close(None)
        await app.stop(0)
        await pool.close()


async def test_a_server_that_starts_without_its_database_starts_not_serving(
    settings: Settings, proxy: TcpProxy
) -> None:
    pool = await create_pool(_via(settings.app_database_url, proxy.port), max_size=2)
    await proxy.cut()
    app = _app(settings, pool)
    port = await app.start("127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        await _wait_for(channel, "", NOT_SERVING)
        await proxy.restore()
        await _wait_for(channel, "", SERVING)
    finally:
        await channel.close(None)
        await app.stop(0)
        await pool.close()


async def test_once_stopping_a_recovered_database_does_not_bring_serving_back() -> None:
    health = HealthServicer()
    database_up = True

    async def probe() -> None:
        if not database_up:
            raise ConnectionRefusedError

    checker = DependencyHealth(health, [""], [DependencyCheck("db", probe)], interval=0.05)
    await checker.start()
    try:
        assert await _status(health) == SERVING
        await health.enter_graceful_shutdown()
        database_up = False
        await asyncio.sleep(0.2)
        database_up = True
        await asyncio.sleep(0.2)
        assert await _status(health) == NOT_SERVING
    finally:
        await checker.stop()


async def _status(health: HealthServicer) -> int:
    context: Any = None  # Check only touches the context for an unknown service
    reply = await health.Check(health_pb2.HealthCheckRequest(service=""), context)
    status: int = reply.status
    return status
