"""Another tenant's endpoints and deliveries do not exist for a caller, as the application
role: NOT_FOUND by name, absent from lists."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import grpc
from google.protobuf import field_mask_pb2

from credbatch.config import Settings
from credbatch.gen.webhooks.v1 import webhook_endpoint_pb2 as pb
from credbatch.gen.webhooks.v1 import webhooks_service_pb2 as api
from tests.fixtures.grpc import fails
from tests.workers.webhooks.events import admin, create_endpoint, deliveries, finish_batch


async def test_other_tenants_endpoints_and_deliveries_are_invisible(
    settings: Settings, hooks_stub: Any, owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    # Port 9 (discard): nothing dispatches in this test; the URL only has to be accepted.
    mine = await create_endpoint(hooks_stub, settings, a, "https://127.0.0.1:9/a")
    await create_endpoint(hooks_stub, settings, b, "https://127.0.0.1:9/b")
    try:
        await finish_batch(owner_pool, app_pool, a)
        (delivery,) = await deliveries(hooks_stub, settings, a, mine.name)
        as_b = admin(settings, b)
        for call in (
            hooks_stub.GetWebhookEndpoint(
                api.GetWebhookEndpointRequest(name=mine.name), metadata=as_b
            ),
            hooks_stub.UpdateWebhookEndpoint(
                api.UpdateWebhookEndpointRequest(
                    webhook_endpoint=pb.WebhookEndpoint(name=mine.name, disabled=True),
                    update_mask=field_mask_pb2.FieldMask(paths=["disabled"]),
                ),
                metadata=as_b,
            ),
            hooks_stub.RotateWebhookEndpointSecret(
                api.RotateWebhookEndpointSecretRequest(name=mine.name), metadata=as_b
            ),
            hooks_stub.ListWebhookDeliveries(
                api.ListWebhookDeliveriesRequest(parent=mine.name), metadata=as_b
            ),
            hooks_stub.RedeliverWebhookEvent(
                api.RedeliverWebhookEventRequest(name=delivery.name), metadata=as_b
            ),
            hooks_stub.DeleteWebhookEndpoint(
                api.DeleteWebhookEndpointRequest(name=mine.name), metadata=as_b
            ),
        ):
            await fails(call, grpc.StatusCode.NOT_FOUND)
        listed = await hooks_stub.ListWebhookEndpoints(
            api.ListWebhookEndpointsRequest(), metadata=as_b
        )
        assert mine.name not in [e.name for e in listed.webhook_endpoints]
        assert len(listed.webhook_endpoints) == 1
        # Untouched by B's attempts.
        still = await hooks_stub.GetWebhookEndpoint(
            api.GetWebhookEndpointRequest(name=mine.name), metadata=admin(settings, a)
        )
        assert not still.disabled
        assert len(await deliveries(hooks_stub, settings, a, mine.name)) == 1
    finally:
        await owner_pool.execute(
            "DELETE FROM webhook_endpoints WHERE tenant_id = ANY($1::uuid[])", [a, b]
        )
