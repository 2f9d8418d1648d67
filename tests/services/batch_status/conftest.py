"""A real BatchStatusService on port 0, reading as the application role."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest_asyncio

from credbatch.config import Settings
from credbatch.gen.batches.v1 import batches_service_pb2_grpc
from services.batch_status.main import service_specs
from tests.fixtures.grpc import StartApp


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def batches_stub(settings: Settings, app_pool: asyncpg.Pool, start_app: StartApp) -> Any:
    running = await start_app(settings, service_specs(settings, app_pool), audit_pool=app_pool)
    return batches_service_pb2_grpc.BatchStatusServiceStub(running.channel)
