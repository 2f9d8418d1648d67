"""A real TenantService on port 0 as the application role."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest_asyncio

from credbatch.config import Settings
from credbatch.gen.tenants.v1 import tenants_service_pb2_grpc
from services.tenants.main import service_specs
from tests.fixtures.grpc import StartApp


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def tenants_stub(settings: Settings, app_pool: asyncpg.Pool, start_app: StartApp) -> Any:
    running = await start_app(settings, service_specs(settings, app_pool))
    return tenants_service_pb2_grpc.TenantServiceStub(running.channel)
