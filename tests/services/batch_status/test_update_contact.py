"""UpdateRecordContact over gRPC as the application role: who may, which records, what is
recorded. The whole loop with the worker and the public endpoints is in
``test_update_contact_with_workers.py``."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import grpc
from google.protobuf import field_mask_pb2

from credbatch.config import Settings
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2
from tests.fixtures.batches import insert_batch
from tests.fixtures.grpc import bearer, fails


def update(name: str, email: str = "", phone: str = "", paths: tuple[str, ...] = ("email",)) -> Any:
    return batches_service_pb2.UpdateRecordContactRequest(
        name=name,
        email=email,
        phone=phone,
        update_mask=field_mask_pb2.FieldMask(paths=list(paths)),
    )


async def test_a_failed_record_is_corrected_recorded_and_queued_again(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    arranged = await insert_batch(
        owner_pool,
        states=("FAILED", "INVITED"),
        creator="ana",
        errors=[("INVALID_RECIPIENT", "the relay refused it"), (None, None)],
        batch_state="COMPLETED_WITH_ERRORS",
    )
    failed, _ = arranged.record_ids
    md = bearer(settings, arranged.tenant_id, "ana", ["issuer"], ["default"])
    name = f"batches/{arranged.batch_id}/records/{failed}"

    response = await batches_stub.UpdateRecordContact(
        update(name, email=" Fixed@Example.ORG ", phone="+14155550133", paths=("email", "phone")),
        metadata=md,
    )
    assert list(response.changed_fields) == ["email", "phone"]
    assert response.record_state == batch_pb2.RECORD_STATE_PENDING
    assert response.batch.state == batch_pb2.BATCH_STATE_IN_PROGRESS

    row = await owner_pool.fetchrow(
        "SELECT state, email, phone, error_code, contact_updated_at FROM records WHERE id = $1",
        failed,
    )
    assert (row["state"], row["email"], row["phone"]) == (
        "PENDING",
        "Fixed@example.org",
        "+14155550133",
    )
    assert row["error_code"] is None and row["contact_updated_at"] is not None
    resource = f"batches/{arranged.batch_id}/records/{failed}"
    [entry] = await owner_pool.fetch(
        "SELECT actor, action, outcome, details FROM audit_events WHERE resource = $1", resource
    )
    assert (entry["actor"], entry["action"], entry["outcome"]) == (
        "ana",
        "record.contact_update",
        "OK",
    )
    # Which fields, never a value, old or new.
    assert entry["details"] == {"fields": ["email", "phone"], "from_state": "FAILED"}


async def test_the_same_value_reinvites_and_records_no_field(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    arranged = await insert_batch(owner_pool, states=("INVITED",), batch_state="COMPLETED")
    [record] = arranged.record_ids
    md = bearer(settings, arranged.tenant_id, "root", ["org_admin"])
    response = await batches_stub.UpdateRecordContact(
        update(f"batches/{arranged.batch_id}/records/{record}", email="holder1@example.org"),
        metadata=md,
    )
    assert list(response.changed_fields) == []
    assert response.record_state == batch_pb2.RECORD_STATE_PENDING
    details = await owner_pool.fetchval(
        "SELECT details FROM audit_events WHERE resource = $1",
        f"batches/{arranged.batch_id}/records/{record}",
    )
    assert details == {"fields": [], "from_state": "INVITED"}


async def test_bad_values_are_refused_field_by_field(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    arranged = await insert_batch(owner_pool, states=("INVITED",), mediums=("EMAIL",))
    [record] = arranged.record_ids
    md = bearer(settings, arranged.tenant_id, "root", ["org_admin"])
    name = f"batches/{arranged.batch_id}/records/{record}"
    bad = await fails(
        batches_stub.UpdateRecordContact(update(name, email="ada@@example"), metadata=md),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert [(v.field, v.reason) for v in bad.violations] == [("email", "INVALID_EMAIL")]
    no_sms = await fails(
        batches_stub.UpdateRecordContact(
            update(name, phone="+14155550133", paths=("phone",)), metadata=md
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert [(v.field, v.reason) for v in no_sms.violations] == [("phone", "MEDIUM_NOT_USED")]
    malformed = await fails(
        batches_stub.UpdateRecordContact(
            update(f"batches/{arranged.batch_id}", email="a@example.org"), metadata=md
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert malformed.violations[0].field == "name"
    assert await owner_pool.fetchval("SELECT state FROM records WHERE id = $1", record) == (
        "INVITED"
    )


async def test_records_not_invited_again_are_refused(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    arranged = await insert_batch(owner_pool, states=("CLAIMED", "REVOKED", "QUEUED"))
    md = bearer(settings, arranged.tenant_id, "root", ["org_admin"])
    for record, state in zip(arranged.record_ids, ("CLAIMED", "REVOKED", "QUEUED"), strict=True):
        refused = await fails(
            batches_stub.UpdateRecordContact(
                update(f"batches/{arranged.batch_id}/records/{record}", email="b@example.org"),
                metadata=md,
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
        )
        assert refused.info.reason == "RECORD_NOT_CORRECTABLE"
        assert refused.info.metadata["state"] == state
        outcome = await owner_pool.fetchval(
            "SELECT outcome FROM audit_events WHERE resource = $1",
            f"batches/{arranged.batch_id}/records/{record}",
        )
        assert outcome == "RECORD_NOT_CORRECTABLE"
    assert (
        await owner_pool.fetchval(
            "SELECT count(*) FROM records WHERE batch_id = $1 AND email = 'b@example.org'",
            arranged.batch_id,
        )
        == 0
    )


async def test_a_cancelled_batch_is_refused(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    arranged = await insert_batch(owner_pool, states=("FAILED",), batch_state="CANCELLED")
    await owner_pool.execute(
        "UPDATE batches SET cancelled_at = now() WHERE id = $1", arranged.batch_id
    )
    [record] = arranged.record_ids
    md = bearer(settings, arranged.tenant_id, "root", ["org_admin"])
    refused = await fails(
        batches_stub.UpdateRecordContact(
            update(f"batches/{arranged.batch_id}/records/{record}", email="c@example.org"),
            metadata=md,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert refused.info.reason == "BATCH_CANCELLED"


async def test_only_the_creator_or_an_admin_and_never_another_tenant(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    arranged = await insert_batch(owner_pool, states=("INVITED",), creator="ana")
    [record] = arranged.record_ids
    name = f"batches/{arranged.batch_id}/records/{record}"
    # An issuer who sees the batch only as its department's observer may not change it.
    bob = bearer(settings, arranged.tenant_id, "bob", ["issuer", "observer"], ["default"])
    await fails(
        batches_stub.UpdateRecordContact(update(name, email="d@example.org"), metadata=bob),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    # Another tenant's admin, naming this tenant's batch and record: as if neither existed.
    other = await insert_batch(owner_pool, states=("INVITED",))
    intruder = bearer(settings, other.tenant_id, "root", ["org_admin"])
    await fails(
        batches_stub.UpdateRecordContact(update(name, email="d@example.org"), metadata=intruder),
        grpc.StatusCode.NOT_FOUND,
    )
    # Its own batch, the other tenant's record id: the record is not found in it.
    crossed = f"batches/{other.batch_id}/records/{record}"
    missing = await fails(
        batches_stub.UpdateRecordContact(update(crossed, email="d@example.org"), metadata=intruder),
        grpc.StatusCode.NOT_FOUND,
    )
    assert missing.info.reason == "RECORD_NOT_FOUND"
    unknown = f"batches/{arranged.batch_id}/records/{uuid.uuid4()}"
    ana = bearer(settings, arranged.tenant_id, "ana", ["issuer"], ["default"])
    await fails(
        batches_stub.UpdateRecordContact(update(unknown, email="d@example.org"), metadata=ana),
        grpc.StatusCode.NOT_FOUND,
    )
    assert await owner_pool.fetchval("SELECT email FROM records WHERE id = $1", record) == (
        "holder1@example.org"
    )
