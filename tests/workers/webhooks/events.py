"""Arrange endpoints through the WebhookService and state changes as the application role."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from credbatch.config import Settings
from credbatch.gen.webhooks.v1 import webhook_endpoint_pb2, webhooks_service_pb2
from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.batches import ArrangedBatch, insert_batch
from tests.fixtures.grpc import Metadata, bearer


def admin(settings: Settings, tenant: uuid.UUID) -> Metadata:
    return bearer(settings, tenant, "admin", ["org_admin"])


async def create_endpoint(
    stub: Any,
    settings: Settings,
    tenant: uuid.UUID,
    url: str,
    event_types: Sequence[webhook_endpoint_pb2.EventType] = (
        webhook_endpoint_pb2.EVENT_TYPE_BATCH_COMPLETED,
    ),
) -> webhook_endpoint_pb2.WebhookEndpoint:
    created: webhook_endpoint_pb2.WebhookEndpoint = await stub.CreateWebhookEndpoint(
        webhooks_service_pb2.CreateWebhookEndpointRequest(
            webhook_endpoint=webhook_endpoint_pb2.WebhookEndpoint(
                url=url, event_types=list(event_types)
            )
        ),
        metadata=admin(settings, tenant),
    )
    return created


async def finish_batch(
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    tenant: uuid.UUID,
    state: str = "COMPLETED",
    records: Sequence[str] = ("INVITED", "INVITED"),
) -> ArrangedBatch:
    """A batch whose state turns to ``state`` in a transaction of the application role."""
    batch = await insert_batch(owner_pool, tenant, states=records, batch_state="IN_PROGRESS")
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        await conn.execute(
            "UPDATE batches SET state = $2, completed_at = now() WHERE id = $1",
            batch.batch_id,
            state,
        )
    return batch


async def deliveries(
    stub: Any, settings: Settings, tenant: uuid.UUID, endpoint: str
) -> list[webhook_endpoint_pb2.WebhookDelivery]:
    found = await stub.ListWebhookDeliveries(
        webhooks_service_pb2.ListWebhookDeliveriesRequest(parent=endpoint),
        metadata=admin(settings, tenant),
    )
    return list(found.deliveries)
