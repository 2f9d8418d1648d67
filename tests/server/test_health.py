"""gRPC health follows PostgreSQL: NOT_SERVING while it is unreachable, SERVING once it is back.

The service's pool reaches the real PostgreSQL through a TCP proxy started by the test, which
can cut the database off (close every connection, refuse new ones) and restore it; the server
keeps running throughout and recovers without help.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.server.health import DependencyCheck, DependencyHealth, postgres_check
from credbatch.server.runner import GrpcApp
from services.templates.main import SERVICE_NAME, service_specs
from tests.fixtures.proxy import TcpProxy, via_proxy, wait_for_health
from tests.fixtures.rendering import InlineRenderer

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


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
    specs = service_specs(settings, pool, InlineRenderer())  # nothing renders here
    return GrpcApp(settings, specs, checks, check_interval=0.2)


async def test_health_turns_not_serving_while_postgres_is_cut_off_and_back_after(
    settings: Settings, proxy: TcpProxy
) -> None:
    pool = await create_pool(via_proxy(settings.app_database_url, proxy.port), max_size=2)
    app = _app(settings, pool)
    port = await app.start("127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        for service in ("", SERVICE_NAME):
            await wait_for_health(channel, service, SERVING)
        await proxy.cut()
        for service in ("", SERVICE_NAME):
            await wait_for_health(channel, service, NOT_SERVING)
        # Still NOT_SERVING a few checks later: the pool cannot reconnect on its own yet.
        await asyncio.sleep(1)
        await wait_for_health(channel, "", NOT_SERVING)
        await proxy.restore()
        for service in ("", SERVICE_NAME):
            await wait_for_health(channel, service, SERVING)
    finally:
        await channel.close(None)
        await app.stop(0)
        await pool.close()


async def test_a_server_that_starts_without_its_database_starts_not_serving(
    settings: Settings, proxy: TcpProxy
) -> None:
    pool = await create_pool(via_proxy(settings.app_database_url, proxy.port), max_size=2)
    await proxy.cut()
    app = _app(settings, pool)
    port = await app.start("127.0.0.1", 0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        await wait_for_health(channel, "", NOT_SERVING)
        await proxy.restore()
        await wait_for_health(channel, "", SERVING)
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
