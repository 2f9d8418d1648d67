"""Webhook endpoint changes leave audit entries: create, update (which fields), rotate,
delete; never the URL or the description; refusals too."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import grpc
from google.protobuf import field_mask_pb2

from credbatch.config import Settings
from credbatch.gen.webhooks.v1 import webhook_endpoint_pb2 as pb
from credbatch.gen.webhooks.v1 import webhooks_service_pb2 as api
from tests.fixtures.audit import actions, audit_entries, entry_text
from tests.fixtures.grpc import bearer, fails
from tests.workers.webhooks.events import admin

URL = "https://127.0.0.1:9/hooks?token=receiver-secret"


async def test_endpoint_changes_are_audited(
    settings: Settings, hooks_stub: Any, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    md = admin(settings, tenant)
    create = api.CreateWebhookEndpointRequest(
        webhook_endpoint=pb.WebhookEndpoint(
            url=URL,
            event_types=[pb.EVENT_TYPE_BATCH_COMPLETED],
            description="ops of ada@example.org",
        ),
        request_id="hook-1",
    )
    created = await hooks_stub.CreateWebhookEndpoint(create, metadata=md)
    # A repeat of the same request changes nothing: no second entry.
    await hooks_stub.CreateWebhookEndpoint(create, metadata=md)
    await hooks_stub.UpdateWebhookEndpoint(
        api.UpdateWebhookEndpointRequest(
            webhook_endpoint=pb.WebhookEndpoint(name=created.name, disabled=True),
            update_mask=field_mask_pb2.FieldMask(paths=["disabled"]),
        ),
        metadata=md,
    )
    await hooks_stub.RotateWebhookEndpointSecret(
        api.RotateWebhookEndpointSecretRequest(name=created.name), metadata=md
    )
    await hooks_stub.DeleteWebhookEndpoint(
        api.DeleteWebhookEndpointRequest(name=created.name), metadata=md
    )
    entries = await audit_entries(owner_pool, tenant)
    assert actions(entries) == [
        ("webhook_endpoint.create", created.name, "OK"),
        ("webhook_endpoint.update", created.name, "OK"),
        ("webhook_secret.rotate", created.name, "OK"),
        ("webhook_endpoint.delete", created.name, "OK"),
    ]
    assert entries[0]["details"] == {"event_types": ["batch.completed"]}
    assert entries[0]["request_id"] == "hook-1"
    assert entries[1]["details"] == {"fields": ["disabled"]}
    for entry in entries:
        text = entry_text(entry)
        assert "receiver-secret" not in text and "127.0.0.1" not in text
        assert "ada@" not in text and "whsec_" not in text


async def test_refused_endpoint_changes_are_audited(
    settings: Settings, hooks_stub: Any, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    missing = f"webhookEndpoints/{uuid.uuid4()}"
    await fails(
        hooks_stub.RotateWebhookEndpointSecret(
            api.RotateWebhookEndpointSecretRequest(name=missing), metadata=admin(settings, tenant)
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    await fails(
        hooks_stub.DeleteWebhookEndpoint(
            api.DeleteWebhookEndpointRequest(name=missing),
            metadata=bearer(settings, tenant, "eve", ["issuer"], ["default"]),
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert [
        (e["actor"], e["action"], e["resource"], e["outcome"])
        for e in await audit_entries(owner_pool, tenant)
    ] == [
        ("admin", "webhook_secret.rotate", missing, "WEBHOOK_ENDPOINT_NOT_FOUND"),
        ("eve", "webhook_endpoint.delete", "", "ROLE_NOT_ALLOWED"),
    ]
