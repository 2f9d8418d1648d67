"""Webhook endpoints and deliveries as the service and the dispatcher see them."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

T = TypeVar("T")

ENDPOINTS = "webhookEndpoints"
DELIVERIES = "deliveries"


class EventType(enum.StrEnum):
    """Event types, as named in payloads and stored in webhook_endpoints.event_types."""

    BATCH_COMPLETED = "batch.completed"
    BATCH_COMPLETED_WITH_ERRORS = "batch.completed_with_errors"
    BATCH_CANCELLED = "batch.cancelled"
    BATCH_FAILED = "batch.failed"
    RECORD_FAILED = "record.failed"
    RECORD_CLAIMED = "record.claimed"
    RECORD_REVOKED = "record.revoked"
    RECORD_EXPIRED = "record.expired"
    RECORD_CONTACT_UPDATED = "record.contact_updated"
    RECORD_BOUNCED = "record.bounced"
    RECORD_DELIVERED = "record.delivered"


class DeliveryState(enum.StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class EndpointDraft:
    """What a caller asks for when creating an endpoint."""

    url: str
    event_types: tuple[EventType, ...]
    description: str = ""
    disabled: bool = False


@dataclass(frozen=True)
class EndpointChanges:
    """An update: only the fields that are not None change."""

    disabled: bool | None = None
    event_types: tuple[EventType, ...] | None = None
    description: str | None = None


@dataclass(frozen=True)
class Endpoint:
    id: uuid.UUID
    url: str
    event_types: tuple[EventType, ...]
    description: str
    disabled: bool
    disabled_reason: str
    created_at: datetime
    updated_at: datetime
    # Only right after CreateWebhookEndpoint and RotateWebhookEndpointSecret.
    secret: str = ""


@dataclass(frozen=True)
class Delivery:
    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: str
    event_type: EventType
    state: DeliveryState
    attempts: int
    last_status_code: int
    last_error: str
    next_attempt_at: datetime | None
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str


def endpoint_name(endpoint_id: uuid.UUID) -> str:
    return f"{ENDPOINTS}/{endpoint_id}"


def delivery_name(endpoint_id: uuid.UUID, delivery_id: uuid.UUID) -> str:
    return f"{ENDPOINTS}/{endpoint_id}/{DELIVERIES}/{delivery_id}"
