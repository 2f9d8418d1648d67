"""WebhookService servicer: requests to domain calls and back, nothing more."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import empty_pb2

from credbatch.auth.caller import current_caller
from credbatch.db import idempotency
from credbatch.gen.webhooks.v1 import (
    webhook_endpoint_pb2,
    webhooks_service_pb2,
    webhooks_service_pb2_grpc,
)
from services.webhooks import mapping
from services.webhooks.endpoints import WebhookEndpoints

Context = grpc.aio.ServicerContext[Any, Any]
Endpoint = webhook_endpoint_pb2.WebhookEndpoint


class WebhookServicer(webhooks_service_pb2_grpc.WebhookServiceServicer):
    """Webhook endpoints and deliveries (see endpoints.WebhookEndpoints)."""

    def __init__(self, endpoints: WebhookEndpoints) -> None:
        self._endpoints = endpoints

    async def CreateWebhookEndpoint(
        self, request: webhooks_service_pb2.CreateWebhookEndpointRequest, context: Context
    ) -> Endpoint:
        idempotency.use_request(request)
        draft, violations = mapping.endpoint_draft(request.webhook_endpoint)
        created = await self._endpoints.create(
            current_caller(), draft, violations, request.request_id
        )
        return mapping.endpoint_to_proto(created)

    async def GetWebhookEndpoint(
        self, request: webhooks_service_pb2.GetWebhookEndpointRequest, context: Context
    ) -> Endpoint:
        target = mapping.endpoint_id(request.name, "name")
        return mapping.endpoint_to_proto(await self._endpoints.get(current_caller(), target))

    async def ListWebhookEndpoints(
        self, request: webhooks_service_pb2.ListWebhookEndpointsRequest, context: Context
    ) -> webhooks_service_pb2.ListWebhookEndpointsResponse:
        page = await self._endpoints.list(current_caller(), request.page_size, request.page_token)
        return webhooks_service_pb2.ListWebhookEndpointsResponse(
            webhook_endpoints=[mapping.endpoint_to_proto(e) for e in page.items],
            next_page_token=page.next_page_token,
        )

    async def UpdateWebhookEndpoint(
        self, request: webhooks_service_pb2.UpdateWebhookEndpointRequest, context: Context
    ) -> Endpoint:
        target, changes = mapping.endpoint_changes(request)
        updated = await self._endpoints.update(current_caller(), target, changes)
        return mapping.endpoint_to_proto(updated)

    async def DeleteWebhookEndpoint(
        self, request: webhooks_service_pb2.DeleteWebhookEndpointRequest, context: Context
    ) -> empty_pb2.Empty:
        await self._endpoints.delete(current_caller(), mapping.endpoint_id(request.name, "name"))
        return empty_pb2.Empty()

    async def RotateWebhookEndpointSecret(
        self, request: webhooks_service_pb2.RotateWebhookEndpointSecretRequest, context: Context
    ) -> Endpoint:
        target = mapping.endpoint_id(request.name, "name")
        return mapping.endpoint_to_proto(
            await self._endpoints.rotate_secret(current_caller(), target)
        )

    async def ListWebhookDeliveries(
        self, request: webhooks_service_pb2.ListWebhookDeliveriesRequest, context: Context
    ) -> webhooks_service_pb2.ListWebhookDeliveriesResponse:
        page = await self._endpoints.list_deliveries(
            current_caller(),
            mapping.endpoint_id(request.parent, "parent"),
            mapping.outcome(request.outcome),
            request.page_size,
            request.page_token,
        )
        return webhooks_service_pb2.ListWebhookDeliveriesResponse(
            deliveries=[mapping.delivery_to_proto(d) for d in page.items],
            next_page_token=page.next_page_token,
        )

    async def RedeliverWebhookEvent(
        self, request: webhooks_service_pb2.RedeliverWebhookEventRequest, context: Context
    ) -> webhook_endpoint_pb2.WebhookDelivery:
        endpoint, delivery = mapping.delivery_ids(request.name, "name")
        added = await self._endpoints.redeliver(current_caller(), endpoint, delivery)
        return mapping.delivery_to_proto(added)
