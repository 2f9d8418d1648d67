"""A webhook receiver, a WebhookService to register endpoints with, and dispatchers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest_asyncio

from credbatch.config import Settings
from credbatch.gen.webhooks.v1 import webhooks_service_pb2_grpc
from services.webhooks.main import service_specs
from tests.fixtures.grpc import StartApp
from tests.workers.webhooks.receiver import Receiver, running_receiver
from workers.webhooks.dispatcher import DispatchConfig

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
