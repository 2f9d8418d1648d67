"""The WebhookService process."""

from __future__ import annotations

import asyncpg

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.gen.webhooks.v1 import webhooks_service_pb2, webhooks_service_pb2_grpc
from credbatch.server.health import postgres_check
from credbatch.server.runner import ServiceSpec, serve_until_signalled
from credbatch.webhooks.sealing import SecretBox
from services.webhooks.endpoints import WebhookEndpoints
from services.webhooks.servicer import WebhookServicer

SERVICE_NAME = webhooks_service_pb2.DESCRIPTOR.services_by_name["WebhookService"].full_name


def service_specs(settings: Settings, pool: asyncpg.Pool) -> list[ServiceSpec]:
    """The service; it needs the webhook KEK (ConfigError without one): secrets are stored
    sealed under it."""
    box = SecretBox(settings.webhook_kek_bytes())
    servicer = WebhookServicer(WebhookEndpoints(pool, development=settings.development, box=box))
    return [
        ServiceSpec(
            SERVICE_NAME,
            lambda server: webhooks_service_pb2_grpc.add_WebhookServiceServicer_to_server(
                servicer, server
            ),
        )
    ]


async def serve(settings: Settings) -> None:
    pool = await create_pool(
        settings.app_database_url, **settings.pools.args("webhooks"), application_name="webhooks"
    )
    try:
        await serve_until_signalled(
            settings,
            "webhooks",
            settings.webhooks_port,
            service_specs(settings, pool),
            [postgres_check(pool)],
            audit_pool=pool,
        )
    finally:
        await pool.close()
