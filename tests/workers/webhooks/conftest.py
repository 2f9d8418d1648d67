"""A webhook receiver, a WebhookService to register endpoints with, and dispatchers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import asyncpg
import pytest_asyncio

from credbatch.config import Settings, load_settings
from credbatch.db.pool import create_pool
from credbatch.gen.webhooks.v1 import webhook_endpoint_pb2, webhooks_service_pb2_grpc
from services.webhooks.main import service_specs
from tests.fixtures.database import with_database
from tests.fixtures.grpc import StartApp
from tests.workers.webhooks.receiver import Receiver, running_receiver
from workers.webhooks.dispatcher import DispatchConfig, Dispatcher
from workers.webhooks.sender import new_client

FAST = DispatchConfig(
    schedule=(0.2, 0.2, 0.2),
    timeout=2.0,
    lease_seconds=4.0,
    per_endpoint=4,
    concurrency=16,
    poll_interval=0.05,
    disable_after=3600.0,
    development=True,
)

RunDispatcher = Callable[[DispatchConfig], Any]


@pytest_asyncio.fixture(loop_scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    async with running_receiver() as running:
        yield running


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def hooks_stub(settings: Settings, app_pool: asyncpg.Pool, start_app: StartApp) -> Any:
    running = await start_app(settings, service_specs(settings, app_pool))
    return webhooks_service_pb2_grpc.WebhookServiceStub(running.channel)


@pytest_asyncio.fixture(loop_scope="session")
async def tenant(owner_pool: asyncpg.Pool) -> AsyncIterator[uuid.UUID]:
    """A fresh tenant; its endpoints (and so their deliveries) are deleted afterwards, so no
    later test's dispatcher finds them due."""
    tenant_id = uuid.uuid4()
    yield tenant_id
    await owner_pool.execute("DELETE FROM webhook_endpoints WHERE tenant_id = $1", tenant_id)


@asynccontextmanager
async def dispatching(
    pool: asyncpg.Pool, config: DispatchConfig = FAST
) -> AsyncIterator[Dispatcher]:
    """A dispatcher running in this loop until the block ends.

    ``pool`` is the application role's; the claim connects as the webhooks role to the same
    database, as a deployed dispatcher does.
    """
    database = await pool.fetchval("SELECT current_database()")
    claim_url = with_database(load_settings().webhooks_database_url, database)
    claim_pool = await create_pool(claim_url, max_size=1)
    stop = asyncio.Event()
    try:
        async with new_client() as client:
            dispatcher = Dispatcher(pool, client, config, claim_pool=claim_pool)
            task = asyncio.create_task(dispatcher.run(stop))
            try:
                yield dispatcher
            finally:
                stop.set()
                await task
    finally:
        await claim_pool.close()


def with_config(**changes: Any) -> DispatchConfig:
    return replace(FAST, **changes)


ALL_BATCH_EVENTS: list[webhook_endpoint_pb2.EventType] = [
    webhook_endpoint_pb2.EVENT_TYPE_BATCH_COMPLETED,
    webhook_endpoint_pb2.EVENT_TYPE_BATCH_COMPLETED_WITH_ERRORS,
    webhook_endpoint_pb2.EVENT_TYPE_BATCH_CANCELLED,
    webhook_endpoint_pb2.EVENT_TYPE_BATCH_FAILED,
]


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)
