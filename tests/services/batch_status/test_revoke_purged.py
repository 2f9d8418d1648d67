"""A purged record's credential can still be revoked (its id and status list entry stay), while
its claim link and everything that would hand the credential out again are gone; retry and
resend pass an erased record by."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from credbatch.config import Settings
from credbatch.gen.batches.v1 import batches_service_pb2
from credbatch.tenancy import TenantScope, tenant_transaction
from tests.fixtures.batches import insert_batch
from tests.fixtures.grpc import bearer
from tests.fixtures.issuance import PublicServer
from tests.services.batch_status.issued_world import (
    issue_batch,
    served_token,
    status_of_credential,
    worker_side,
)
from tests.workers.janitor.world import purge_all


async def test_revoking_a_purged_record_sets_its_status_bit(
    batches_stub: Any,
    settings: Settings,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    janitor_pool: asyncpg.Pool,
    public_server: PublicServer,
    refresher_pool: asyncpg.Pool,
) -> None:
    keys, signer = worker_side(app_pool, public_server.url)
    batch = await issue_batch(
        app_pool, owner_pool, keys, signer, public_server.url, ("INVITED", "CLAIMED", "FAILED")
    )
    invited, claimed, _failed = batch.records
    jwts = {
        row["record_id"]: row["sd_jwt"]
        for row in await owner_pool.fetch(
            "SELECT record_id, sd_jwt FROM credentials WHERE batch_id = $1", batch.batch_id
        )
    }
    await owner_pool.execute(
        "UPDATE batches SET state = 'COMPLETED_WITH_ERRORS',"
        " completed_at = now() - interval '60 days' WHERE id = $1",
        batch.batch_id,
    )
    await purge_all(janitor_pool, step=1000)
    assert (
        await owner_pool.fetchval(
            "SELECT count(*) FROM credentials WHERE batch_id = $1 AND sd_jwt = ''", batch.batch_id
        )
        == 2
    )
    assert invited.claim_token is not None
    async with httpx.AsyncClient(base_url=public_server.url) as client:
        assert (await client.get(f"/claim/{invited.claim_token}")).status_code == 410

        md = bearer(settings, batch.tenant_id, "admin", ["org_admin"])
        response = await batches_stub.RevokeRecords(
            batches_service_pb2.RevokeRecordsRequest(
                name=f"batches/{batch.batch_id}",
                record_ids=[str(invited.record_id), str(claimed.credential_id)],
                reason="holder asked",
            ),
            metadata=md,
        )
        assert response.revoked_count == 2
        await signer.refresh_due(refresher_pool)
        assert invited.entry is not None
        after = await served_token(client, batch.tenant_id, invited.entry.list_id)
    assert status_of_credential(jwts[invited.record_id], after) == 1
    assert status_of_credential(jwts[claimed.record_id], after) == 1
    rows = await owner_pool.fetch(
        "SELECT state, email, revoke_reason, purge_reason FROM records"
        " WHERE batch_id = $1 ORDER BY row_number",
        batch.batch_id,
    )
    assert [tuple(r.values()) for r in rows] == [
        # Revoked after the purge: the reason, free text about the holder, is not kept.
        ("REVOKED", None, None, "RETENTION"),
        ("REVOKED", None, None, "RETENTION"),
        ("FAILED", None, None, "RETENTION"),
    ]


async def test_retry_and_resend_leave_an_erased_record_alone(
    batches_stub: Any, settings: Settings, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    batch = await insert_batch(
        owner_pool,
        states=("FAILED", "FAILED", "INVITED", "INVITED"),
        errors=[("SMTP_REJECTED", "no"), ("SMTP_REJECTED", "no"), (None, None), (None, None)],
        batch_state="COMPLETED_WITH_ERRORS",
    )
    erased_failed, kept_failed, erased_invited, kept_invited = batch.record_ids
    admin = TenantScope(batch.tenant_id, "admin", frozenset({"org_admin"}), ("default",))
    async with tenant_transaction(app_pool, admin) as conn:
        await conn.fetchval(
            "SELECT holder_records_erase($1::uuid[])", [erased_failed, erased_invited]
        )
    md = bearer(settings, batch.tenant_id, "admin", ["org_admin"])
    name = f"batches/{batch.batch_id}"

    await batches_stub.RetryFailedRecords(
        batches_service_pb2.RetryFailedRecordsRequest(name=name), metadata=md
    )
    await batches_stub.ResendInvitations(
        batches_service_pb2.ResendInvitationsRequest(name=name), metadata=md
    )

    states = {
        row["id"]: row["state"]
        for row in await owner_pool.fetch(
            "SELECT id, state FROM records WHERE batch_id = $1", batch.batch_id
        )
    }
    assert states == {
        erased_failed: "FAILED",
        kept_failed: "PENDING",
        erased_invited: "INVITED",
        kept_invited: "PENDING",
    }
