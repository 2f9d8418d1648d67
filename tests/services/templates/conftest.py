"""A real TemplateService on port 0, on this run's database as the application role."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from credbatch.config import Settings
from credbatch.gen.templates.v1 import templates_service_pb2_grpc
from services.templates.main import service_specs
from tests.fixtures.grpc import StartApp
from tests.fixtures.templates import Tenant, make_tenant


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def templates_stub(settings: Settings, app_pool: asyncpg.Pool, start_app: StartApp) -> Any:
    # Any: the generated stubs are typed for the synchronous API.
    running = await start_app(settings, service_specs(settings, app_pool))
    return templates_service_pb2_grpc.TemplateServiceStub(running.channel)


@pytest.fixture
def tenant(settings: Settings) -> Tenant:
    return make_tenant(settings)


@pytest.fixture
def other_tenant(settings: Settings) -> Tenant:
    return make_tenant(settings)
