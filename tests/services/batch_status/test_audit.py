"""BatchStatusService commands leave audit entries: cancel, retry, revoke, resend, each with
its outcome, refusals included, and no holder's data."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import grpc

from credbatch.config import Settings
from credbatch.gen.batches.v1 import batches_service_pb2
from tests.fixtures.audit import actions, audit_entries, entry_text
from tests.fixtures.batches import insert_batch
from tests.fixtures.grpc import bearer, fails
from tests.fixtures.issuance import PublicServer
from tests.services.batch_status.issued_world import issue_batch, worker_side


async def test_cancel_retry_and_resend_are_audited(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    arranged = await insert_batch(
        owner_pool,
        states=("FAILED", "INVITED", "PENDING"),
        creator="ana",
        batch_state="IN_PROGRESS",
    )
    name = f"batches/{arranged.batch_id}"
    md = bearer(settings, arranged.tenant_id, "ana", ["issuer"], ["default"])
    await batches_stub.RetryFailedRecords(
        batches_service_pb2.RetryFailedRecordsRequest(name=name), metadata=md
    )
    await batches_stub.ResendInvitations(
        batches_service_pb2.ResendInvitationsRequest(name=name, request_id="resend-1"),
        metadata=md,
    )
    await batches_stub.CancelBatch(batches_service_pb2.CancelBatchRequest(name=name), metadata=md)
    entries = await audit_entries(owner_pool, arranged.tenant_id)
    assert actions(entries) == [
        ("batch.retry", name, "OK"),
        ("invitations.resend", name, "OK"),
        ("batch.cancel", name, "OK"),
    ]
    retry, resend, cancel = entries
    assert {e["actor"] for e in entries} == {"ana"}
    assert {e["actor_kind"] for e in entries} == {"USER"}
    assert retry["details"] == {"failed_records": 1}
    assert resend["details"]["requested"] == "all"
    assert resend["details"]["resent"] == 1
    assert resend["request_id"] == "resend-1"
    assert cancel["details"] == {"previous_state": "IN_PROGRESS", "changed": True}
    for entry in entries:
        assert "holder" not in entry_text(entry)
        assert "example.org" not in entry_text(entry)


async def test_refusals_are_audited_with_their_reason(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    arranged = await insert_batch(owner_pool, states=("FAILED", "QUEUED"), creator="ana")
    tenant = arranged.tenant_id
    name = f"batches/{arranged.batch_id}"
    ana = bearer(settings, tenant, "ana", ["issuer"], ["default"])
    bob = bearer(settings, tenant, "bob", ["issuer"], ["default"])
    observer = bearer(settings, tenant, "olga", ["observer"], ["default"])
    await batches_stub.CancelBatch(batches_service_pb2.CancelBatchRequest(name=name), metadata=ana)
    # A decision of the service: the batch is cancelled.
    await fails(
        batches_stub.RetryFailedRecords(
            batches_service_pb2.RetryFailedRecordsRequest(name=name), metadata=ana
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    # Another issuer does not see the batch: NOT_FOUND, as for one that does not exist.
    await fails(
        batches_stub.CancelBatch(batches_service_pb2.CancelBatchRequest(name=name), metadata=bob),
        grpc.StatusCode.NOT_FOUND,
    )
    # The role rules refuse before the service runs: the edge records it, without a resource.
    await fails(
        batches_stub.CancelBatch(
            batches_service_pb2.CancelBatchRequest(name=name), metadata=observer
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    # A request that does not parse, likewise.
    await fails(
        batches_stub.RevokeRecords(
            batches_service_pb2.RevokeRecordsRequest(name=name, reason=""), metadata=ana
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    entries = await audit_entries(owner_pool, tenant)
    assert [(e["actor"], *a) for e, a in zip(entries, actions(entries), strict=True)] == [
        ("ana", "batch.cancel", name, "OK"),
        ("ana", "batch.retry", name, "BATCH_CANCELLED"),
        ("bob", "batch.cancel", name, "BATCH_NOT_FOUND"),
        ("olga", "batch.cancel", "", "ROLE_NOT_ALLOWED"),
        ("ana", "records.revoke", "", "REQUIRED"),
    ]
    assert entries[4]["details"] == {"violations": 1}


async def test_another_tenants_batch_is_refused_and_audited_in_the_callers_tenant(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    theirs = await insert_batch(owner_pool, states=("PENDING",), creator="ana")
    mine = uuid.uuid4()
    name = f"batches/{theirs.batch_id}"
    md = bearer(settings, mine, "mallory", ["org_admin"])
    await fails(
        batches_stub.CancelBatch(batches_service_pb2.CancelBatchRequest(name=name), metadata=md),
        grpc.StatusCode.NOT_FOUND,
    )
    assert await audit_entries(owner_pool, theirs.tenant_id) == []
    refused = [("batch.cancel", name, "BATCH_NOT_FOUND")]
    assert actions(await audit_entries(owner_pool, mine)) == refused


async def test_revoke_is_audited_without_its_reason(
    batches_stub: Any,
    settings: Settings,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    public_server: PublicServer,
) -> None:
    keys, signer = worker_side(app_pool, public_server.url)
    batch = await issue_batch(
        app_pool, owner_pool, keys, signer, public_server.url, ("INVITED", "CLAIMED")
    )
    name = f"batches/{batch.batch_id}"
    md = bearer(settings, batch.tenant_id, batch.creator, ["issuer"])
    reason = "Holder Ada Lovelace asked, ada@example.org"
    response = await batches_stub.RevokeRecords(
        batches_service_pb2.RevokeRecordsRequest(
            name=name, record_ids=[str(batch.records[0].record_id)], reason=reason
        ),
        metadata=md,
    )
    assert response.revoked_count == 1
    (entry,) = await audit_entries(owner_pool, batch.tenant_id)
    assert (entry["action"], entry["resource"], entry["outcome"]) == (
        "records.revoke",
        name,
        "OK",
    )
    assert entry["details"] == {"requested": 1, "revoked": 1}
    assert "Lovelace" not in entry_text(entry)
    assert "ada@" not in entry_text(entry)
