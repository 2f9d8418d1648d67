"""Proto <-> domain conversion for the WebhookService."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from google.protobuf import timestamp_pb2

from credbatch import names
from credbatch.errors import FieldViolation, InvalidArgument
from credbatch.gen.webhooks.v1 import webhook_endpoint_pb2, webhooks_service_pb2
from credbatch.webhooks.model import (
    ENDPOINTS,
    Delivery,
    DeliveryState,
    Endpoint,
    EndpointChanges,
    EndpointDraft,
    EventType,
    delivery_name,
    endpoint_name,
)

_EVENT_TYPES = {
    webhook_endpoint_pb2.EVENT_TYPE_BATCH_COMPLETED: EventType.BATCH_COMPLETED,
    webhook_endpoint_pb2.EVENT_TYPE_BATCH_COMPLETED_WITH_ERRORS: (
        EventType.BATCH_COMPLETED_WITH_ERRORS
    ),
    webhook_endpoint_pb2.EVENT_TYPE_BATCH_CANCELLED: EventType.BATCH_CANCELLED,
    webhook_endpoint_pb2.EVENT_TYPE_BATCH_FAILED: EventType.BATCH_FAILED,
    webhook_endpoint_pb2.EVENT_TYPE_RECORD_FAILED: EventType.RECORD_FAILED,
    webhook_endpoint_pb2.EVENT_TYPE_RECORD_CLAIMED: EventType.RECORD_CLAIMED,
    webhook_endpoint_pb2.EVENT_TYPE_RECORD_REVOKED: EventType.RECORD_REVOKED,
    webhook_endpoint_pb2.EVENT_TYPE_RECORD_EXPIRED: EventType.RECORD_EXPIRED,
    webhook_endpoint_pb2.EVENT_TYPE_RECORD_CONTACT_UPDATED: EventType.RECORD_CONTACT_UPDATED,
    webhook_endpoint_pb2.EVENT_TYPE_RECORD_BOUNCED: EventType.RECORD_BOUNCED,
    webhook_endpoint_pb2.EVENT_TYPE_RECORD_DELIVERED: EventType.RECORD_DELIVERED,
}
_EVENT_TYPE_NUMBERS = {domain: number for number, domain in _EVENT_TYPES.items()}
_OUTCOMES = {
    webhook_endpoint_pb2.DELIVERY_OUTCOME_PENDING: DeliveryState.PENDING,
    webhook_endpoint_pb2.DELIVERY_OUTCOME_SUCCEEDED: DeliveryState.SUCCEEDED,
    webhook_endpoint_pb2.DELIVERY_OUTCOME_FAILED: DeliveryState.FAILED,
}
_OUTCOME_NUMBERS = {domain: number for number, domain in _OUTCOMES.items()}
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_DELIVERY_NAME = re.compile(rf"{ENDPOINTS}/(?P<endpoint>{_UUID})/deliveries/(?P<delivery>{_UUID})")
UPDATABLE_FIELDS = ("disabled", "event_types", "description")


def _timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def endpoint_id(name: str, field: str) -> uuid.UUID:
    return names.parse_name(name, ENDPOINTS, field)


def delivery_ids(name: str, field: str) -> tuple[uuid.UUID, uuid.UUID]:
    match = _DELIVERY_NAME.fullmatch(name)
    if match is None:
        description = f"must be `{ENDPOINTS}/{{uuid}}/deliveries/{{uuid}}`"
        raise InvalidArgument(
            f"invalid {field}: {description}",
            reason="INVALID_NAME",
            violations=[FieldViolation(field, description, "INVALID_NAME")],
        )
    return uuid.UUID(match["endpoint"]), uuid.UUID(match["delivery"])


def event_types(
    values: list[int], field: str
) -> tuple[tuple[EventType, ...], list[FieldViolation]]:
    found: list[EventType] = []
    violations: list[FieldViolation] = []
    for value in values:
        event_type = _EVENT_TYPES.get(value)  # type: ignore[call-overload]
        if event_type is None:
            violations.append(
                FieldViolation(field, f"unknown event type {value}", "INVALID_EVENT_TYPE")
            )
        elif event_type not in found:
            found.append(event_type)
    if not values:
        violations.append(FieldViolation(field, "name at least one event type", "REQUIRED"))
    return tuple(found), violations


def endpoint_draft(
    message: webhook_endpoint_pb2.WebhookEndpoint,
) -> tuple[EndpointDraft, list[FieldViolation]]:
    types, violations = event_types(list(message.event_types), "webhook_endpoint.event_types")
    if not message.url:
        violations.append(FieldViolation("webhook_endpoint.url", "is required", "REQUIRED"))
    draft = EndpointDraft(message.url, types, message.description, message.disabled)
    return draft, violations


def endpoint_changes(
    request: webhooks_service_pb2.UpdateWebhookEndpointRequest,
) -> tuple[uuid.UUID, EndpointChanges]:
    target = endpoint_id(request.webhook_endpoint.name, "webhook_endpoint.name")
    paths = list(request.update_mask.paths)
    unknown = [p for p in paths if p not in UPDATABLE_FIELDS]
    if not paths or unknown:
        description = f"paths among {', '.join(UPDATABLE_FIELDS)}" + (
            f"; not {', '.join(unknown)}" if unknown else ""
        )
        raise InvalidArgument(
            f"invalid update_mask: {description}",
            violations=[FieldViolation("update_mask", description, "INVALID_UPDATE_MASK")],
        )
    message = request.webhook_endpoint
    types: tuple[EventType, ...] | None = None
    if "event_types" in paths:
        types, violations = event_types(list(message.event_types), "webhook_endpoint.event_types")
        if violations:
            raise InvalidArgument("invalid event_types", violations=violations)
    return target, EndpointChanges(
        disabled=message.disabled if "disabled" in paths else None,
        event_types=types,
        description=message.description if "description" in paths else None,
    )


def outcome(value: int) -> DeliveryState | None:
    if value == webhook_endpoint_pb2.DELIVERY_OUTCOME_UNSPECIFIED:
        return None
    state: DeliveryState | None = _OUTCOMES.get(value)  # type: ignore[call-overload]
    if state is None:
        raise InvalidArgument(
            "invalid outcome",
            violations=[FieldViolation("outcome", f"unknown outcome {value}", "INVALID_OUTCOME")],
        )
    return state


def endpoint_to_proto(endpoint: Endpoint) -> webhook_endpoint_pb2.WebhookEndpoint:
    return webhook_endpoint_pb2.WebhookEndpoint(
        name=endpoint_name(endpoint.id),
        url=endpoint.url,
        event_types=[_EVENT_TYPE_NUMBERS[t] for t in endpoint.event_types],
        description=endpoint.description,
        disabled=endpoint.disabled,
        disabled_reason=endpoint.disabled_reason,
        secret=endpoint.secret,
        create_time=_timestamp(endpoint.created_at),
        update_time=_timestamp(endpoint.updated_at),
    )


def delivery_to_proto(delivery: Delivery) -> webhook_endpoint_pb2.WebhookDelivery:
    return webhook_endpoint_pb2.WebhookDelivery(
        name=delivery_name(delivery.endpoint_id, delivery.id),
        event_id=delivery.event_id,
        event_type=_EVENT_TYPE_NUMBERS[delivery.event_type],
        outcome=_OUTCOME_NUMBERS[delivery.state],
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        next_attempt_time=_timestamp(delivery.next_attempt_at),
        create_time=_timestamp(delivery.created_at),
        complete_time=_timestamp(delivery.completed_at),
    )
