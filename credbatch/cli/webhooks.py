"""`credbatch webhooks create|list|deliveries|redeliver`: endpoints that hear about batches."""

from __future__ import annotations

import click

from credbatch.cli.client import (
    UNARY_TIMEOUT,
    address_option,
    channel,
    resolve,
    resource_name,
    rpc_errors,
    token_option,
)
from credbatch.cli.output import enum_label, note, out, table, timestamp
from credbatch.gen.webhooks.v1 import (
    webhook_endpoint_pb2,
    webhooks_service_pb2,
    webhooks_service_pb2_grpc,
)

EVENT_TYPES = {
    "batch.completed": webhook_endpoint_pb2.EVENT_TYPE_BATCH_COMPLETED,
    "batch.completed_with_errors": webhook_endpoint_pb2.EVENT_TYPE_BATCH_COMPLETED_WITH_ERRORS,
    "batch.cancelled": webhook_endpoint_pb2.EVENT_TYPE_BATCH_CANCELLED,
    "batch.failed": webhook_endpoint_pb2.EVENT_TYPE_BATCH_FAILED,
    "record.failed": webhook_endpoint_pb2.EVENT_TYPE_RECORD_FAILED,
    "record.claimed": webhook_endpoint_pb2.EVENT_TYPE_RECORD_CLAIMED,
    "record.revoked": webhook_endpoint_pb2.EVENT_TYPE_RECORD_REVOKED,
    "record.expired": webhook_endpoint_pb2.EVENT_TYPE_RECORD_EXPIRED,
    "record.contact_updated": webhook_endpoint_pb2.EVENT_TYPE_RECORD_CONTACT_UPDATED,
    "record.bounced": webhook_endpoint_pb2.EVENT_TYPE_RECORD_BOUNCED,
    "record.delivered": webhook_endpoint_pb2.EVENT_TYPE_RECORD_DELIVERED,
}
EVENT_NAMES = {number: name for name, number in EVENT_TYPES.items()}
BATCH_EVENTS = [name for name in EVENT_TYPES if name.startswith("batch.")]
OUTCOMES = {
    "pending": webhook_endpoint_pb2.DELIVERY_OUTCOME_PENDING,
    "succeeded": webhook_endpoint_pb2.DELIVERY_OUTCOME_SUCCEEDED,
    "failed": webhook_endpoint_pb2.DELIVERY_OUTCOME_FAILED,
}


@click.group()
def webhooks() -> None:
    """Webhook endpoints: hear about batches instead of polling (org_admin, service)."""


@webhooks.command("create")
@click.argument("url")
@click.option(
    "--event",
    "events",
    multiple=True,
    type=click.Choice(list(EVENT_TYPES)),
    help="Event type to send (repeatable); default: every batch.* event.",
)
@click.option("--description", default="", help="Free text for people.")
@click.option("--request-id", default="", help="Retry-safe id: the same id creates once.")
@token_option
@address_option("webhooks")
def create(
    url: str,
    events: tuple[str, ...],
    description: str,
    request_id: str,
    token: str | None,
    webhooks_addr: str,
) -> None:
    """Register URL (https; http to loopback in development) and print its signing secret."""
    endpoint = resolve("webhooks", token, webhooks_addr)
    with channel(endpoint) as chan, rpc_errors(endpoint):
        created = webhooks_service_pb2_grpc.WebhookServiceStub(chan).CreateWebhookEndpoint(
            webhooks_service_pb2.CreateWebhookEndpointRequest(
                webhook_endpoint=webhook_endpoint_pb2.WebhookEndpoint(
                    url=url,
                    event_types=[EVENT_TYPES[e] for e in events or BATCH_EVENTS],
                    description=description,
                ),
                request_id=request_id,
            ),
            metadata=endpoint.metadata,
            timeout=UNARY_TIMEOUT,
        )
    note(f"created {created.name} for {', '.join(EVENT_NAMES[t] for t in created.event_types)}")
    if created.secret:
        note("signing secret (shown only now; keep it where the receiver can read it):")
        out.print(created.secret, highlight=False)
    else:
        note("an endpoint with this request id already existed; its secret is not shown again")


@webhooks.command("list")
@click.option("--limit", default=50, show_default=True, help="How many endpoints, newest first.")
@token_option
@address_option("webhooks")
def list_(limit: int, token: str | None, webhooks_addr: str) -> None:
    """List the tenant's webhook endpoints, newest first."""
    endpoint = resolve("webhooks", token, webhooks_addr)
    found: list[webhook_endpoint_pb2.WebhookEndpoint] = []
    with channel(endpoint) as chan, rpc_errors(endpoint):
        page_token = ""
        while len(found) < limit:
            response = webhooks_service_pb2_grpc.WebhookServiceStub(chan).ListWebhookEndpoints(
                webhooks_service_pb2.ListWebhookEndpointsRequest(
                    page_size=min(limit - len(found), 1000), page_token=page_token
                ),
                metadata=endpoint.metadata,
                timeout=UNARY_TIMEOUT,
            )
            found.extend(response.webhook_endpoints)
            page_token = response.next_page_token
            if not page_token:
                break
    table(
        f"{len(found)} endpoint(s)",
        ["name", "url", "events", "state", "description", "created"],
        (
            [
                e.name,
                e.url,
                " ".join(EVENT_NAMES[t] for t in e.event_types),
                f"disabled: {e.disabled_reason}"
                if e.disabled_reason
                else ("disabled" if e.disabled else "enabled"),
                e.description,
                timestamp(e.create_time),
            ]
            for e in found[:limit]
        ),
    )


@webhooks.command("deliveries")
@click.argument("endpoint_name", metavar="ENDPOINT")
@click.option("--outcome", type=click.Choice(list(OUTCOMES)), help="Only this outcome.")
@click.option("--limit", default=50, show_default=True, help="How many deliveries, newest first.")
@token_option
@address_option("webhooks")
def deliveries(
    endpoint_name: str, outcome: str | None, limit: int, token: str | None, webhooks_addr: str
) -> None:
    """List the deliveries of ENDPOINT (webhookEndpoints/ID or ID), newest first."""
    parent = resource_name("webhookEndpoints", endpoint_name)
    endpoint = resolve("webhooks", token, webhooks_addr)
    found: list[webhook_endpoint_pb2.WebhookDelivery] = []
    with channel(endpoint) as chan, rpc_errors(endpoint):
        page_token = ""
        while len(found) < limit:
            response = webhooks_service_pb2_grpc.WebhookServiceStub(chan).ListWebhookDeliveries(
                webhooks_service_pb2.ListWebhookDeliveriesRequest(
                    parent=parent,
                    page_size=min(limit - len(found), 1000),
                    page_token=page_token,
                    outcome=OUTCOMES.get(
                        outcome or "", webhook_endpoint_pb2.DELIVERY_OUTCOME_UNSPECIFIED
                    ),
                ),
                metadata=endpoint.metadata,
                timeout=UNARY_TIMEOUT,
            )
            found.extend(response.deliveries)
            page_token = response.next_page_token
            if not page_token:
                break
    table(
        f"{len(found)} deliver(ies)",
        ["name", "event", "type", "outcome", "attempts", "status", "error", "next", "created"],
        (
            [
                d.name,
                d.event_id,
                EVENT_NAMES.get(d.event_type, ""),
                enum_label(
                    webhook_endpoint_pb2.DeliveryOutcome.Name(d.outcome), "DELIVERY_OUTCOME_"
                ),
                d.attempts,
                d.last_status_code or "",
                d.last_error,
                timestamp(d.next_attempt_time),
                timestamp(d.create_time),
            ]
            for d in found[:limit]
        ),
    )


@webhooks.command("redeliver")
@click.argument("delivery")
@token_option
@address_option("webhooks")
def redeliver(delivery: str, token: str | None, webhooks_addr: str) -> None:
    """Send the event of DELIVERY (webhookEndpoints/ID/deliveries/ID) once more."""
    endpoint = resolve("webhooks", token, webhooks_addr)
    with channel(endpoint) as chan, rpc_errors(endpoint):
        added = webhooks_service_pb2_grpc.WebhookServiceStub(chan).RedeliverWebhookEvent(
            webhooks_service_pb2.RedeliverWebhookEventRequest(name=delivery),
            metadata=endpoint.metadata,
            timeout=UNARY_TIMEOUT,
        )
    note(f"queued {added.name} ({added.event_id})")
