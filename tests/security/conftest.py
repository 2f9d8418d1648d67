"""Attacks run as a tenant would run them: real servers, the application database role."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest_asyncio

from credbatch.config import Settings
from credbatch.gen.templates.v1 import templates_service_pb2_grpc
from services.templates.main import service_specs
from tests.fixtures.grpc import StartApp


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def templates_stub(settings: Settings, app_pool: asyncpg.Pool, start_app: StartApp) -> Any:
    # Any: the generated stubs are typed for the synchronous API.
    running = await start_app(settings, service_specs(settings, app_pool))
    return templates_service_pb2_grpc.TemplateServiceStub(running.channel)
