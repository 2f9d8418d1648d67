"""ListAuditEvents: org admins read their tenant's trail, newest first, filtered and paged;
nobody else reads it, and no tenant reads another's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
from google.protobuf import field_mask_pb2

from credbatch.config import Settings
from credbatch.gen.tenants.v1 import audit_event_pb2
from credbatch.gen.tenants.v1 import tenant_pb2 as pb
from credbatch.gen.tenants.v1 import tenants_service_pb2 as api
from tests.fixtures.database import insert_row
from tests.fixtures.grpc import bearer, fails

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# (minutes after T0, actor, action, resource, outcome)
SEEDED = [
    (0, "ana", "batch.upload", "batches/b1", "OK"),
    (1, "ana", "batch.cancel", "batches/b1", "OK"),
    (2, "bob", "batch.cancel", "batches/b2", "NOT_FOUND"),
    (3, "cli:keys-rewrap", "signing_keys.rewrap", "signingKeys", "OK"),
    (4, "ana", "webhook_secret.rotate", "webhookEndpoints/w1", "OK"),
]


def _admin(settings: Settings, tenant: uuid.UUID) -> Any:
    return bearer(settings, tenant, "admin", ["org_admin"])


async def _seed(owner_pool: asyncpg.Pool, tenant: uuid.UUID) -> None:
    """The entries of SEEDED, dated as given (the owner may date an entry)."""
    async with owner_pool.acquire() as conn:
        await conn.execute("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING", tenant)
        for minutes, actor, action, resource, outcome in SEEDED:
            await insert_row(
                conn,
                "audit_events",
                {
                    "tenant_id": tenant,
                    "id": uuid.uuid4(),
                    "occurred_at": T0 + timedelta(minutes=minutes),
                    "actor": actor,
                    "actor_kind": "SYSTEM" if actor.startswith("cli:") else "USER",
                    "action": action,
                    "resource": resource,
                    "outcome": outcome,
                    "details": {"records": 3},
                },
            )


async def _list(stub: Any, md: Any, filter_text: str = "", **paging: Any) -> Any:
    return await stub.ListAuditEvents(
        api.ListAuditEventsRequest(filter=filter_text, **paging), metadata=md
    )


async def test_newest_first_with_every_field(
    settings: Settings, tenants_stub: Any, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    await _seed(owner_pool, tenant)
    page = await _list(tenants_stub, _admin(settings, tenant))
    assert [e.action for e in page.audit_events] == [s[2] for s in reversed(SEEDED)]
    assert page.next_page_token == ""
    rotate = page.audit_events[0]
    assert rotate.name.startswith("auditEvents/")
    assert rotate.occur_time.ToDatetime(tzinfo=UTC) == T0 + timedelta(minutes=4)
    assert (rotate.actor, rotate.actor_kind) == ("ana", audit_event_pb2.AUDIT_ACTOR_KIND_USER)
    assert (rotate.resource, rotate.outcome) == ("webhookEndpoints/w1", "OK")
    assert dict(rotate.details) == {"records": 3}
    rewrap = page.audit_events[1]
    assert rewrap.actor_kind == audit_event_pb2.AUDIT_ACTOR_KIND_SYSTEM


async def test_filters(settings: Settings, tenants_stub: Any, owner_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    await _seed(owner_pool, tenant)
    md = _admin(settings, tenant)
    cases = {
        'actor = "ana"': ["webhook_secret.rotate", "batch.cancel", "batch.upload"],
        "action = batch.cancel": ["batch.cancel", "batch.cancel"],
        'resource = "batches/b1"': ["batch.cancel", "batch.upload"],
        "outcome = NOT_FOUND": ["batch.cancel"],
        'actor = "ana" AND action = "batch.cancel"': ["batch.cancel"],
        "action = batch.cancel AND action = batch.upload": [],
        'occur_time >= "2026-03-01T12:01:00Z" AND occur_time < "2026-03-01T12:03:00Z"': [
            "batch.cancel",
            "batch.cancel",
        ],
        'occur_time > "2026-03-01T13:03:00+01:00"': ["webhook_secret.rotate"],
    }
    for text, expected in cases.items():
        page = await _list(tenants_stub, md, text)
        assert [e.action for e in page.audit_events] == expected, text


async def test_bad_filters_are_refused_naming_the_problem(
    settings: Settings, tenants_stub: Any
) -> None:
    md = _admin(settings, uuid.uuid4())
    for text, words in {
        "action = batch.delete": "unknown action",
        "actor = ana OR actor = bob": "`OR` is not supported",
        "creator = ana": "field `creator` is not supported",
        'occur_time = "2026-03-01T12:00:00Z"': "operator `=` is not supported for occur_time",
        "occur_time > yesterday": "occur_time needs an RFC 3339 time",
        'occur_time > "2026-03-01T12:00:00"': "needs a time zone offset",
    }.items():
        refused = await fails(_list(tenants_stub, md, text), grpc.StatusCode.INVALID_ARGUMENT)
        assert refused.fields == ["filter"], text
        assert words in refused.violations[0].description, text


async def test_pages_follow_each_other_and_tokens_keep_their_filter(
    settings: Settings, tenants_stub: Any, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    await _seed(owner_pool, tenant)
    md = _admin(settings, tenant)
    seen: list[str] = []
    token = ""
    while True:
        page = await _list(tenants_stub, md, 'actor = "ana"', page_size=2, page_token=token)
        seen += [e.name for e in page.audit_events]
        token = page.next_page_token
        if not token:
            break
        assert len(page.audit_events) == 2
    everything = await _list(tenants_stub, md, 'actor = "ana"')
    assert seen == [e.name for e in everything.audit_events]
    assert len(seen) == 3
    first = await _list(tenants_stub, md, 'actor = "ana"', page_size=1)
    refused = await fails(
        _list(tenants_stub, md, 'actor = "bob"', page_token=first.next_page_token),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert refused.fields == ["page_token"]


async def test_only_admins_read_and_no_tenant_reads_another(
    settings: Settings, tenants_stub: Any, owner_pool: asyncpg.Pool
) -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    await _seed(owner_pool, tenant)
    for roles in (["issuer"], ["observer"]):
        await fails(
            _list(tenants_stub, bearer(settings, tenant, "x", roles, ["default"])),
            grpc.StatusCode.PERMISSION_DENIED,
        )
    service = await _list(tenants_stub, bearer(settings, tenant, "svc", ["service"]))
    assert len(service.audit_events) == len(SEEDED)
    theirs = await _list(tenants_stub, _admin(settings, other))
    assert list(theirs.audit_events) == []
    by_resource = await _list(tenants_stub, _admin(settings, other), 'resource = "batches/b1"')
    assert list(by_resource.audit_events) == []
    # A page token of the first tenant's list is a position, never a way into its entries.
    first = await _list(tenants_stub, _admin(settings, tenant), page_size=1)
    beyond = await _list(tenants_stub, _admin(settings, other), page_token=first.next_page_token)
    assert list(beyond.audit_events) == []


async def test_a_profile_update_is_listed(settings: Settings, tenants_stub: Any) -> None:
    tenant = uuid.uuid4()
    md = _admin(settings, tenant)
    await tenants_stub.UpdateTenantProfile(
        api.UpdateTenantProfileRequest(
            tenant_profile=pb.TenantProfile(
                display_name="Ada's Academy", support_email="ada@example.org"
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name", "support_email"]),
        ),
        metadata=md,
    )
    page = await _list(tenants_stub, md, "action = tenant_profile.update")
    (entry,) = page.audit_events
    assert (entry.actor, entry.resource, entry.outcome) == ("admin", "tenantProfile", "OK")
    assert list(entry.details["fields"]) == ["display_name", "support_email"]
    assert "ada@" not in str(entry)
