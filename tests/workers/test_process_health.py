"""Health of the processes without a gRPC API, served on CREDBATCH_HEALTH_PORT.

The relay and an issuance worker run as real processes whose RabbitMQ (and the relay's
PostgreSQL) is reached through TCP proxies the test cuts and restores: each turns NOT_SERVING
while its dependency is gone and SERVING again once it is back, without being restarted. The
webhook dispatcher, which needs only PostgreSQL, follows it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2

from credbatch.config import WEBHOOKS_ROLE, Settings
from credbatch.env_values import derive_role_url
from credbatch.server.health_server import serving_health
from tests.fixtures.amqp import AMQP_HOST, AMQP_PORT
from tests.fixtures.dispatch import FairDb
from tests.fixtures.issuance import stop_process, worker_env
from tests.fixtures.processes import free_port
from tests.fixtures.proxy import TcpProxy, via_proxy, wait_for_health
from tests.fixtures.webhooks import spawn_dispatcher

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# A robust AMQP connection retries every 5 s; a health check runs every 2 s.
RECOVERY = 20.0
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@contextlib.asynccontextmanager
async def proxy_to(host: str, port: int) -> AsyncIterator[TcpProxy]:
    running = TcpProxy(host, port)
    await running.start()
    try:
        yield running
    finally:
        with contextlib.suppress(AssertionError):
            await running.cut()


@pytest.fixture
async def amqp_proxy() -> AsyncIterator[TcpProxy]:
    async with proxy_to(AMQP_HOST, int(AMQP_PORT)) as running:
        yield running


@pytest.fixture
async def pg_proxy(fair_db: FairDb) -> AsyncIterator[TcpProxy]:
    async with proxy_to("127.0.0.1", 5432) as running:
        yield running


Spawn = Callable[[dict[str, str]], subprocess.Popen[bytes]]


def module_spawner(module: str) -> Spawn:
    def spawn(env: dict[str, str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", module], env=env, stdout=subprocess.DEVNULL)

    return spawn


@contextlib.asynccontextmanager
async def process_health(
    spawn: Spawn, env: dict[str, str], component: str
) -> AsyncIterator[grpc.aio.Channel]:
    """Start the process with a health port; yields a channel once it answers SERVING."""
    port = free_port()
    process = spawn({**env, "CREDBATCH_HEALTH_PORT": str(port)})
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        for service in ("", component):
            await wait_for_health(channel, service, SERVING, timeout=30)
        yield channel
        assert process.poll() is None, "the process exited"
    finally:
        await channel.close(None)
        await stop_process(process)


def settings_via(
    worker_settings: Settings, fair_db: FairDb, amqp: TcpProxy, pg: TcpProxy | None = None
) -> dict[str, str]:
    """The processes' environment on the private database, RabbitMQ (and PostgreSQL) proxied."""
    settings = worker_settings.with_overrides(
        database_url=fair_db.settings.database_url,
        app_database_url=fair_db.settings.app_database_url,
    )
    env = worker_env(settings)
    env["CREDBATCH_AMQP_URL"] = via_proxy(settings.amqp_url, amqp.port)
    if pg is not None:
        env["CREDBATCH_DATABASE_URL"] = via_proxy(settings.database_url, pg.port)
        env["CREDBATCH_APP_DATABASE_URL"] = via_proxy(settings.app_database_url, pg.port)
    return env


async def cut_and_restore(channel: grpc.aio.Channel, proxy: TcpProxy, component: str) -> None:
    await proxy.cut()
    for service in ("", component):
        await wait_for_health(channel, service, NOT_SERVING)
    await proxy.restore()
    for service in ("", component):
        await wait_for_health(channel, service, SERVING, timeout=RECOVERY)


async def test_relay_health_follows_rabbitmq_then_postgresql(
    worker_settings: Settings, fair_db: FairDb, amqp_proxy: TcpProxy, pg_proxy: TcpProxy
) -> None:
    env = settings_via(worker_settings, fair_db, amqp_proxy, pg_proxy)
    async with process_health(module_spawner("workers.relay"), env, "relay") as channel:
        await cut_and_restore(channel, amqp_proxy, "relay")
        await cut_and_restore(channel, pg_proxy, "relay")


async def test_worker_health_follows_rabbitmq(
    worker_settings: Settings, fair_db: FairDb, amqp_proxy: TcpProxy
) -> None:
    env = settings_via(worker_settings, fair_db, amqp_proxy)
    async with process_health(module_spawner("workers.issuance"), env, "issuance") as channel:
        await cut_and_restore(channel, amqp_proxy, "issuance")


async def test_webhook_dispatcher_health_follows_postgresql(
    fair_db: FairDb, pg_proxy: TcpProxy
) -> None:
    database_url = via_proxy(fair_db.settings.database_url, pg_proxy.port)
    settings = fair_db.settings.with_overrides(
        database_url=database_url,
        app_database_url=via_proxy(fair_db.settings.app_database_url, pg_proxy.port),
        webhooks_database_url=derive_role_url(database_url, WEBHOOKS_ROLE),
    )

    def spawn(env: dict[str, str]) -> subprocess.Popen[bytes]:
        return spawn_dispatcher(settings, {"CREDBATCH_HEALTH_PORT": env["CREDBATCH_HEALTH_PORT"]})

    async with process_health(spawn, {}, "webhooks_dispatcher") as channel:
        await cut_and_restore(channel, pg_proxy, "webhooks_dispatcher")


async def test_health_turns_not_serving_once_the_process_begins_to_stop() -> None:
    stop = asyncio.Event()
    port = free_port()
    async with serving_health("relay", "127.0.0.1", port, (), stop, interval=0.1):
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        try:
            await wait_for_health(channel, "relay", SERVING)
            stop.set()
            # Still inside the block: the process is draining, and says so.
            await wait_for_health(channel, "relay", NOT_SERVING, timeout=2)
            await wait_for_health(channel, "", NOT_SERVING, timeout=2)
        finally:
            await channel.close(None)


async def test_no_health_port_serves_nothing() -> None:
    async with serving_health("relay", "127.0.0.1", 0, (), asyncio.Event()) as server:
        assert server is None
