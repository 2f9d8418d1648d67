"""EraseHolder: one holder's personal data erased across the tenant's batches, credentials
revoked or left valid, open records cancelled; org admins only; other tenants and other
holders untouched, whatever ids are sent."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import grpc
import pytest

from credbatch.config import Settings
from credbatch.gen.tenants.v1 import tenants_service_pb2 as api
from credbatch.tenancy import TenantScope, tenant_transaction
from tests.fixtures.batches import ArrangedBatch, insert_batch
from tests.fixtures.grpc import bearer, fails
from tests.services.batch_status.issued_world import IssuedBatch, issue_batch, worker_side

ADA = "Ada.Lovelace@Example.ORG"
# As uploads store it: the domain lower-cased, the local part as written.
ADA_STORED = "Ada.Lovelace@example.org"
ADA_PHONE = "+442079460123"
REVOKE = api.CREDENTIAL_DISPOSITION_REVOKE
KEEP = api.CREDENTIAL_DISPOSITION_KEEP_VALID


def _admin(settings: Settings, tenant: uuid.UUID) -> Any:
    return bearer(settings, tenant, "admin", ["org_admin"])


async def _issued(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, settings: Settings, tenant: uuid.UUID
) -> IssuedBatch:
    """INVITED, CLAIMED, FAILED records with credentials where issued; rows 1 and 3 Ada's."""
    keys, signer = worker_side(app_pool, settings.public_url)
    batch = await issue_batch(
        app_pool,
        owner_pool,
        keys,
        signer,
        settings.public_url,
        ("INVITED", "CLAIMED", "FAILED"),
        tenant_id=tenant,
    )
    await owner_pool.execute(
        "UPDATE records SET email = $2, phone = $3 WHERE batch_id = $1 AND row_number IN (1, 3)",
        batch.batch_id,
        ADA_STORED,
        ADA_PHONE,
    )
    return batch


async def _pending(owner_pool: asyncpg.Pool, tenant: uuid.UUID) -> ArrangedBatch:
    """A batch still in progress: Ada's PENDING and QUEUED records, and someone else's."""
    return await insert_batch(
        owner_pool,
        tenant,
        states=("PENDING", "QUEUED", "PENDING"),
        emails=(ADA_STORED, ADA_STORED, "grace@example.org"),
        batch_state="IN_PROGRESS",
    )


async def _records(owner_pool: asyncpg.Pool, batch_id: uuid.UUID) -> list[tuple[Any, ...]]:
    rows = await owner_pool.fetch(
        "SELECT row_number, state, email, phone, attributes, purge_reason FROM records"
        " WHERE batch_id = $1 ORDER BY row_number",
        batch_id,
    )
    return [tuple(r.values()) for r in rows]


async def test_erasing_by_email_revokes_cancels_and_erases_only_that_holder(
    settings: Settings,
    tenants_stub: Any,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
) -> None:
    tenant, other_tenant = uuid.uuid4(), uuid.uuid4()
    issued = await _issued(app_pool, owner_pool, settings, tenant)
    pending = await _pending(owner_pool, tenant)
    elsewhere = await _issued(app_pool, owner_pool, settings, other_tenant)
    elsewhere_before = await _records(owner_pool, elsewhere.batch_id)

    answer = await tenants_stub.EraseHolder(
        api.EraseHolderRequest(email=ADA, credentials=REVOKE), metadata=_admin(settings, tenant)
    )

    assert (
        answer.records_erased,
        answer.credentials_revoked,
        answer.records_cancelled,
        answer.batches,
    ) == (4, 1, 2, 2)
    rows = await _records(owner_pool, issued.batch_id)
    assert rows[0] == (1, "REVOKED", None, None, {}, "ERASURE")
    assert rows[1][:3] == (2, "CLAIMED", "holder2@example.org")
    assert rows[2] == (3, "FAILED", None, None, {}, "ERASURE")
    rows = await _records(owner_pool, pending.batch_id)
    assert [r[1] for r in rows] == ["CANCELLED", "CANCELLED", "PENDING"]
    assert rows[2][2] == "grace@example.org" and rows[2][5] is None
    # The credential body is gone, its id and status list entry stay; the certificate too.
    credential = await owner_pool.fetchrow(
        "SELECT sd_jwt, status_list_id FROM credentials WHERE record_id = $1",
        issued.records[0].record_id,
    )
    assert credential["sd_jwt"] == "" and credential["status_list_id"] is not None
    assert await _records(owner_pool, elsewhere.batch_id) == elsewhere_before

    again = await tenants_stub.EraseHolder(
        api.EraseHolderRequest(email=ADA, credentials=REVOKE), metadata=_admin(settings, tenant)
    )
    assert (again.records_erased, again.credentials_revoked, again.records_cancelled) == (0, 0, 0)


async def test_erasing_by_phone_can_leave_credentials_valid(
    settings: Settings,
    tenants_stub: Any,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
) -> None:
    tenant = uuid.uuid4()
    issued = await _issued(app_pool, owner_pool, settings, tenant)

    # Written nationally, as a file may hold it: normalised in the default region first.
    answer = await tenants_stub.EraseHolder(
        api.EraseHolderRequest(phone="+44 20 7946 0123", credentials=KEEP),
        metadata=_admin(settings, tenant),
    )

    assert (answer.records_erased, answer.credentials_revoked) == (2, 0)
    rows = await _records(owner_pool, issued.batch_id)
    assert [(r[1], r[5]) for r in rows] == [
        ("INVITED", "ERASURE"),
        ("CLAIMED", None),
        ("FAILED", "ERASURE"),
    ]


async def test_the_audit_trail_records_the_erasure_without_the_contact(
    settings: Settings, tenants_stub: Any, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    await _pending(owner_pool, tenant)

    await tenants_stub.EraseHolder(
        api.EraseHolderRequest(email=ADA, credentials=KEEP), metadata=_admin(settings, tenant)
    )

    entry = await owner_pool.fetchrow(
        "SELECT actor, action, resource, outcome, details::text AS details FROM audit_events"
        " WHERE tenant_id = $1",
        tenant,
    )
    assert (entry["actor"], entry["action"], entry["resource"], entry["outcome"]) == (
        "admin",
        "holder.erase",
        "holders",
        "OK",
    )
    assert "ada" not in entry["details"].lower() and "@" not in entry["details"]


@pytest.mark.parametrize("roles", [["issuer"], ["service"], ["observer"]])
async def test_only_an_org_admin_may_erase(
    settings: Settings, tenants_stub: Any, owner_pool: asyncpg.Pool, roles: list[str]
) -> None:
    tenant = uuid.uuid4()
    pending = await _pending(owner_pool, tenant)
    before = await _records(owner_pool, pending.batch_id)

    await fails(
        tenants_stub.EraseHolder(
            api.EraseHolderRequest(email=ADA, credentials=REVOKE),
            metadata=bearer(settings, tenant, "someone", roles),
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert await _records(owner_pool, pending.batch_id) == before


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (api.EraseHolderRequest(credentials=REVOKE), "holder"),
        (api.EraseHolderRequest(email="not an address", credentials=REVOKE), "email"),
        (api.EraseHolderRequest(phone="12", credentials=REVOKE), "phone"),
        (api.EraseHolderRequest(email=ADA), "credentials"),
        (api.EraseHolderRequest(email=ADA, credentials=KEEP, reason="x" * 501), "reason"),
    ],
)
async def test_a_bad_request_names_its_field(
    settings: Settings, tenants_stub: Any, request_: api.EraseHolderRequest, field: str
) -> None:
    details = await fails(
        tenants_stub.EraseHolder(request_, metadata=_admin(settings, uuid.uuid4())),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.bad_request is not None
    assert [v.field for v in details.bad_request.field_violations] == [field]


async def test_the_application_role_erases_no_other_tenant_s_records(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    their_batch = await insert_batch(
        owner_pool, theirs, states=("INVITED", "FAILED"), batch_state="COMPLETED_WITH_ERRORS"
    )
    before = await _records(owner_pool, their_batch.batch_id)
    admin = TenantScope(mine, "admin", frozenset({"org_admin"}), ("default",))

    # Another tenant's record ids, sent straight to the function as the application role.
    async with tenant_transaction(app_pool, admin) as conn:
        erased = await conn.fetchval(
            "SELECT holder_records_erase($1::uuid[])", their_batch.record_ids
        )
    assert erased == 0
    issuer = TenantScope(theirs, "ana", frozenset({"issuer"}), ("default",))
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tenant_transaction(app_pool, issuer) as conn:
            await conn.fetchval("SELECT holder_records_erase($1::uuid[])", their_batch.record_ids)
    assert await _records(owner_pool, their_batch.batch_id) == before


async def test_a_refused_erasure_is_recorded_without_the_value(
    settings: Settings, tenants_stub: Any, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()

    await fails(
        tenants_stub.EraseHolder(
            api.EraseHolderRequest(email="ada at example", credentials=KEEP),
            metadata=_admin(settings, tenant),
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )

    entry = await owner_pool.fetchrow(
        "SELECT action, outcome, details::text AS details FROM audit_events WHERE tenant_id = $1",
        tenant,
    )
    assert entry is not None
    assert (entry["action"], entry["outcome"]) == ("holder.erase", "INVALID_EMAIL")
    assert "ada" not in entry["details"]
