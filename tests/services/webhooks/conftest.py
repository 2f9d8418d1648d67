"""A real WebhookService on port 0 as the application role, in development and production."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest_asyncio

from credbatch.config import Settings
from credbatch.gen.webhooks.v1 import webhooks_service_pb2_grpc
from credbatch.server.runner import ServiceSpec
from credbatch.webhooks.sealing import SecretBox
from services.webhooks.endpoints import WebhookEndpoints
from services.webhooks.main import SERVICE_NAME, service_specs
from services.webhooks.servicer import WebhookServicer
from tests.fixtures.grpc import StartApp


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def hooks_stub(settings: Settings, app_pool: asyncpg.Pool, start_app: StartApp) -> Any:
    running = await start_app(settings, service_specs(settings, app_pool), audit_pool=app_pool)
    return webhooks_service_pb2_grpc.WebhookServiceStub(running.channel)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def production_stub(settings: Settings, app_pool: asyncpg.Pool, start_app: StartApp) -> Any:
    """The servicer as production mode builds it (tokens verified as in the other tests)."""
    box = SecretBox(settings.webhook_kek_bytes())
    servicer = WebhookServicer(WebhookEndpoints(app_pool, development=False, box=box))
    spec = ServiceSpec(
        SERVICE_NAME,
        lambda server: webhooks_service_pb2_grpc.add_WebhookServiceServicer_to_server(
            servicer, server
        ),
    )
    running = await start_app(settings, [spec])
    return webhooks_service_pb2_grpc.WebhookServiceStub(running.channel)
