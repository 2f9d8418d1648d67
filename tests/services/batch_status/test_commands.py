"""CancelBatch racing running workers, and RetryFailedRecords turning failures into successes.

The issuance worker is simulated by its record transaction exactly as
credbatch/batches/repository.py documents it: lock the record FOR UPDATE, skip it when
CANCELLED, otherwise sign (here: a short sleep) and write ISSUED in the same transaction.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import grpc
import pytest

from credbatch.config import Settings
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2
from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.batches import insert_batch, insert_schema
from tests.fixtures.grpc import bearer


async def work_one(
    pool: asyncpg.Pool, tenant: uuid.UUID, record_id: uuid.UUID, *, fail: bool = False
) -> str:
    """One job of the simulated worker; returns what it did."""
    async with tenant_transaction(pool, service_scope(tenant)) as conn:
        state = await conn.fetchval(
            "SELECT state FROM records WHERE tenant_id = $1 AND id = $2 FOR UPDATE",
            tenant,
            record_id,
        )
        if state in ("CANCELLED", "INVITED"):
            return "skipped"
        await asyncio.sleep(0.005)  # signing and rendering happen while the row is locked
        if fail:
            await conn.execute(
                "UPDATE records SET state = 'FAILED', error_code = 'SMTP_DOWN', error_message ="
                " 'mail server unavailable', updated_at = clock_timestamp() WHERE id = $1",
                record_id,
            )
            return "failed"
        await conn.execute(
            "UPDATE records SET state = 'ISSUED', issued_at = clock_timestamp() WHERE id = $1",
            record_id,
        )
        await conn.execute(
            "UPDATE records SET state = 'INVITED', invited_at = clock_timestamp(),"
            " updated_at = clock_timestamp(), attempt = attempt + 1 WHERE id = $1",
            record_id,
        )
        return "issued"


async def test_no_record_is_issued_after_the_cancel_committed(
    batches_stub: Any, settings: Settings, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(
        owner_pool, tenant, schema, creator="ana", states=["QUEUED"] * 400
    )
    jobs: asyncio.Queue[uuid.UUID] = asyncio.Queue()
    for record_id in arranged.record_ids:
        jobs.put_nowait(record_id)
    outcomes: list[str] = []

    async def worker() -> None:
        while not jobs.empty():
            outcomes.append(await work_one(app_pool, tenant, jobs.get_nowait()))

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    while outcomes.count("issued") < 40:
        await asyncio.sleep(0.01)
    md = bearer(settings, tenant, "ana", ["issuer"])
    cancelled = await batches_stub.CancelBatch(
        batches_service_pb2.CancelBatchRequest(name=f"batches/{arranged.batch_id}"), metadata=md
    )
    # The cancel has committed: whatever is issued now was issued before it.
    issued_at_cancel = set(
        await owner_pool.fetch(
            "SELECT id FROM records WHERE batch_id = $1 AND state = 'INVITED'", arranged.batch_id
        )
    )
    await asyncio.gather(*workers)
    final = await owner_pool.fetch(
        "SELECT id, state FROM records WHERE batch_id = $1", arranged.batch_id
    )
    issued_after = {r["id"] for r in final if r["state"] == "INVITED"}
    assert issued_after == {r["id"] for r in issued_at_cancel}
    assert {r["state"] for r in final} == {"INVITED", "CANCELLED"}
    assert outcomes.count("skipped") > 0, "the workers never met a cancelled record"
    assert cancelled.state == batch_pb2.BATCH_STATE_CANCELLED
    assert cancelled.record_counts.invited == len(issued_after)
    assert cancelled.record_counts.cancelled == 400 - len(issued_after)
    # Idempotent: a second cancel changes nothing.
    again = await batches_stub.CancelBatch(
        batches_service_pb2.CancelBatchRequest(name=f"batches/{arranged.batch_id}"), metadata=md
    )
    assert again.record_counts == cancelled.record_counts
    assert again.complete_time == cancelled.complete_time


async def test_retry_turns_failures_into_successes(
    batches_stub: Any, settings: Settings, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(owner_pool, tenant, schema, creator="ana", states=["QUEUED"] * 10)
    # The mail server is down for the even rows.
    for row, record_id in enumerate(arranged.record_ids, start=1):
        await work_one(app_pool, tenant, record_id, fail=row % 2 == 0)
    md = bearer(settings, tenant, "root", ["org_admin"])
    name = f"batches/{arranged.batch_id}"
    before = await batches_stub.GetBatch(
        batches_service_pb2.GetBatchRequest(name=name), metadata=md
    )
    assert before.state == batch_pb2.BATCH_STATE_COMPLETED_WITH_ERRORS
    assert before.record_counts.failed == 5

    retried = await batches_stub.RetryFailedRecords(
        batches_service_pb2.RetryFailedRecordsRequest(name=name), metadata=md
    )
    assert retried.state == batch_pb2.BATCH_STATE_IN_PROGRESS
    assert retried.record_counts.pending == 5 and retried.record_counts.failed == 0
    assert not retried.HasField("complete_time")
    again = await batches_stub.RetryFailedRecords(
        batches_service_pb2.RetryFailedRecordsRequest(name=name), metadata=md
    )
    assert again.record_counts == retried.record_counts

    # The mail server is back: the relay publishes the PENDING records, the worker issues.
    pending = await owner_pool.fetch(
        "SELECT id, attempt, error_code FROM records WHERE batch_id = $1 AND state = 'PENDING'",
        arranged.batch_id,
    )
    assert {(r["attempt"], r["error_code"]) for r in pending} == {(0, None)}
    for record in pending:
        assert await work_one(app_pool, tenant, record["id"]) == "issued"
    after = await batches_stub.GetBatch(batches_service_pb2.GetBatchRequest(name=name), metadata=md)
    assert after.state == batch_pb2.BATCH_STATE_COMPLETED
    assert after.record_counts.invited == 10 and after.record_counts.failed == 0

    report = b"".join(
        [
            c.chunk
            async for c in batches_stub.DownloadBatchReport(
                batches_service_pb2.DownloadBatchReportRequest(name=name), metadata=md
            )
        ]
    )
    assert b"SMTP_DOWN" not in report


async def test_retry_of_a_cancelled_batch_is_refused(
    batches_stub: Any, settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(
        owner_pool, tenant, schema, creator="ana", states=["FAILED", "QUEUED"]
    )
    md = bearer(settings, tenant, "root", ["org_admin"])
    name = f"batches/{arranged.batch_id}"
    await batches_stub.CancelBatch(batches_service_pb2.CancelBatchRequest(name=name), metadata=md)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await batches_stub.RetryFailedRecords(
            batches_service_pb2.RetryFailedRecordsRequest(name=name), metadata=md
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
