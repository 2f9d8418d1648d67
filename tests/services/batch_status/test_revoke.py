"""RevokeRecords end to end: the records become REVOKED with their reason, the counts and the
report say so, and after one refresher pass the status list token the public endpoints serve
has exactly the revoked credentials' bits set."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import grpc
import httpx

from credbatch.config import Settings
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2
from services.batch_status.report import COLUMNS
from tests.fixtures.grpc import bearer, fails
from tests.fixtures.issuance import PublicServer
from tests.services.batch_status.issued_world import (
    IssuedBatch,
    issue_batch,
    served_token,
    status_of_credential,
    worker_side,
)

STATES = ("INVITED", "CLAIMED", "ISSUED", "FAILED", "INVITED")


def request(
    batch: IssuedBatch, ids: list[Any], reason: str = "issued in error"
) -> batches_service_pb2.RevokeRecordsRequest:
    return batches_service_pb2.RevokeRecordsRequest(
        name=f"batches/{batch.batch_id}", record_ids=[str(i) for i in ids], reason=reason
    )


async def states_and_reasons(
    owner_pool: asyncpg.Pool, batch: IssuedBatch
) -> list[tuple[str, str | None]]:
    rows = await owner_pool.fetch(
        "SELECT state, revoke_reason FROM records WHERE batch_id = $1 ORDER BY row_number",
        batch.batch_id,
    )
    return [(row["state"], row["revoke_reason"]) for row in rows]


async def credentials(owner_pool: asyncpg.Pool, batch: IssuedBatch) -> dict[uuid.UUID, str]:
    rows = await owner_pool.fetch(
        "SELECT record_id, sd_jwt FROM credentials WHERE batch_id = $1", batch.batch_id
    )
    return {row["record_id"]: row["sd_jwt"] for row in rows}


async def test_revoked_credentials_are_invalid_in_the_served_status_list(
    batches_stub: Any,
    settings: Settings,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    public_server: PublicServer,
    refresher_pool: asyncpg.Pool,
) -> None:
    keys, signer = worker_side(app_pool, public_server.url)
    batch = await issue_batch(app_pool, owner_pool, keys, signer, public_server.url, STATES)
    invited, claimed, issued, _failed, other = batch.records
    by_record = await credentials(owner_pool, batch)
    async with httpx.AsyncClient(base_url=public_server.url) as client:
        assert invited.entry is not None
        before = await served_token(client, batch.tenant_id, invited.entry.list_id)
        assert all(status_of_credential(c, before) == 0 for c in by_record.values())

        # One record named by its id, one by its credential's id (the report's credential_id).
        md = bearer(settings, batch.tenant_id, batch.creator, ["issuer"])
        response = await batches_stub.RevokeRecords(
            request(batch, [invited.record_id, claimed.credential_id]), metadata=md
        )
        assert response.revoked_count == 2
        assert response.batch.record_counts.revoked == 2
        assert response.batch.record_counts.invited == 1
        assert response.batch.record_counts.claimed == 0
        assert response.batch.record_counts.issued == 1
        assert await states_and_reasons(owner_pool, batch) == [
            ("REVOKED", "issued in error"),
            ("REVOKED", "issued in error"),
            ("ISSUED", None),
            ("FAILED", None),
            ("INVITED", None),
        ]
        # The stored token is due again; the public side serves the old one until it is signed.
        assert await served_token(client, batch.tenant_id, invited.entry.list_id) == before
        await signer.refresh_due(refresher_pool)
        after = await served_token(client, batch.tenant_id, invited.entry.list_id)
    assert status_of_credential(by_record[invited.record_id], after) == 1
    assert status_of_credential(by_record[claimed.record_id], after) == 1
    assert status_of_credential(by_record[issued.record_id], after) == 0
    assert status_of_credential(by_record[other.record_id], after) == 0

    # The per-record report shows the state and why.
    chunks = batches_stub.DownloadBatchReport(
        batches_service_pb2.DownloadBatchReportRequest(
            name=f"batches/{batch.batch_id}", states=[batch_pb2.RECORD_STATE_REVOKED]
        ),
        metadata=md,
    )
    report = b"".join([c.chunk async for c in chunks]).decode()
    lines = report.splitlines()[1:]
    assert len(lines) == 2
    assert all(
        ",RECORD_STATE_REVOKED," in line
        and line.split(",")[COLUMNS.index("error_message")] == "issued in error"
        for line in lines
    )


async def test_without_ids_every_issued_record_is_revoked_once(
    batches_stub: Any,
    settings: Settings,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    public_server: PublicServer,
) -> None:
    keys, signer = worker_side(app_pool, public_server.url)
    batch = await issue_batch(app_pool, owner_pool, keys, signer, public_server.url, STATES)
    md = bearer(settings, batch.tenant_id, "admin", ["org_admin"])
    first = await batches_stub.RevokeRecords(request(batch, [], "course withdrawn"), metadata=md)
    assert first.revoked_count == 4
    assert first.batch.record_counts.revoked == 4
    assert first.batch.record_counts.failed == 1
    assert first.batch.state == batch_pb2.BATCH_STATE_COMPLETED_WITH_ERRORS
    again = await batches_stub.RevokeRecords(request(batch, [], "again"), metadata=md)
    assert again.revoked_count == 0
    named_again = await batches_stub.RevokeRecords(
        request(batch, [batch.records[0].record_id], "again"), metadata=md
    )
    assert named_again.revoked_count == 0
    # The first reason stays.
    assert [r for _, r in await states_and_reasons(owner_pool, batch)] == [
        "course withdrawn",
        "course withdrawn",
        "course withdrawn",
        None,
        "course withdrawn",
    ]


async def test_ids_that_cannot_be_revoked_are_named_and_nothing_changes(
    batches_stub: Any,
    settings: Settings,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    public_server: PublicServer,
) -> None:
    keys, signer = worker_side(app_pool, public_server.url)
    batch = await issue_batch(app_pool, owner_pool, keys, signer, public_server.url, STATES)
    elsewhere = await issue_batch(
        app_pool,
        owner_pool,
        keys,
        signer,
        public_server.url,
        ("INVITED",),
        tenant_id=batch.tenant_id,
    )
    stranger, failed = elsewhere.records[0].record_id, batch.records[3].record_id
    unknown = uuid.uuid4()
    bits_before = await owner_pool.fetchval(
        "SELECT bits FROM status_lists WHERE tenant_id = $1", batch.tenant_id
    )
    md = bearer(settings, batch.tenant_id, batch.creator, ["issuer"])
    error = await fails(
        batches_stub.RevokeRecords(
            request(batch, [batch.records[0].record_id, stranger, failed, unknown]), metadata=md
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    message = error.status.message
    assert str(stranger) in message and str(unknown) in message and str(failed) in message
    assert str(batch.records[0].record_id) not in message
    assert {v.reason for v in error.violations} == {"RECORD_NOT_FOUND", "RECORD_NOT_ISSUED"}
    assert [s for s, _ in await states_and_reasons(owner_pool, batch)] == list(STATES)
    bits_after = await owner_pool.fetchval(
        "SELECT bits FROM status_lists WHERE tenant_id = $1", batch.tenant_id
    )
    assert bits_after == bits_before

    for bad, field in (
        (request(batch, ["not-a-uuid"]), "record_ids[0]"),
        (request(batch, [], "   "), "reason"),
        (request(batch, [], "x" * 501), "reason"),
    ):
        found = await fails(
            batches_stub.RevokeRecords(bad, metadata=md), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert found.fields == [field]


async def test_observers_and_other_issuers_cannot_revoke(
    batches_stub: Any,
    settings: Settings,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    public_server: PublicServer,
) -> None:
    keys, signer = worker_side(app_pool, public_server.url)
    batch = await issue_batch(app_pool, owner_pool, keys, signer, public_server.url, ("INVITED",))
    tenant = batch.tenant_id
    observer = bearer(settings, tenant, "olga", ["observer"], departments=["default"])
    await fails(
        batches_stub.RevokeRecords(request(batch, []), metadata=observer),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    # Row-level security hides another issuer's batch: it does not exist for this one.
    other = bearer(settings, tenant, "bob", ["issuer"], departments=["default"])
    await fails(
        batches_stub.RevokeRecords(request(batch, []), metadata=other),
        grpc.StatusCode.NOT_FOUND,
    )
    # An issuer that sees the batch as an observer of its department still may not change it.
    both = bearer(settings, tenant, "bob", ["issuer", "observer"], departments=["default"])
    await fails(
        batches_stub.RevokeRecords(request(batch, []), metadata=both),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert [s for s, _ in await states_and_reasons(owner_pool, batch)] == ["INVITED"]
    service = bearer(settings, tenant, "svc", ["service"])
    done = await batches_stub.RevokeRecords(request(batch, []), metadata=service)
    assert done.revoked_count == 1


async def test_concurrent_revocations_and_refreshes_lose_no_bit(
    batches_stub: Any,
    settings: Settings,
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    public_server: PublicServer,
    refresher_pool: asyncpg.Pool,
) -> None:
    keys, signer = worker_side(app_pool, public_server.url)
    batch = await issue_batch(
        app_pool, owner_pool, keys, signer, public_server.url, ["INVITED"] * 12
    )
    ids = [r.record_id for r in batch.records]
    # Overlapping groups: each also names the next group's first record, so the calls wait
    # for each other's record locks as well as for the one status list row.
    groups = [ids[i : i + 4] for i in range(0, 12, 3)]
    md = bearer(settings, batch.tenant_id, batch.creator, ["issuer"])
    stop = asyncio.Event()

    async def refresher() -> None:
        while not stop.is_set():
            await signer.refresh_due(refresher_pool)
            await asyncio.sleep(0)

    refreshing = asyncio.create_task(refresher())
    try:
        responses = await asyncio.gather(
            *(batches_stub.RevokeRecords(request(batch, g), metadata=md) for g in groups)
        )
    finally:
        stop.set()
        await refreshing
    assert sum(r.revoked_count for r in responses) == 12
    await signer.refresh_due(refresher_pool)
    by_record = await credentials(owner_pool, batch)
    entry = batch.records[0].entry
    assert entry is not None
    async with httpx.AsyncClient(base_url=public_server.url) as client:
        token = await served_token(client, batch.tenant_id, entry.list_id)
    assert [status_of_credential(by_record[i], token) for i in ids] == [1] * 12
