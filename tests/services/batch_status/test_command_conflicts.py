"""CancelBatch and RetryFailedRecords never wait for records another transaction holds.

A transaction locking the batch's records against id order (last first) used to make the
cancel, which waited for record locks in id order, a deadlock victim. The commands now take
records only SKIP LOCKED, so they cannot be part of a deadlock; what was held is taken by a
later round once released.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from credbatch.batches.model import BatchState
from credbatch.tenancy import tenant_transaction, user_scope
from services.batch_status.status import SETTLE, BatchStatus
from tests.fixtures.batches import insert_batch

_LOCK = "SELECT 1 FROM records WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
# The commands take held records for SETTLE seconds of rounds, then return. Ten times that is
# their deadline here: room for a loaded machine, while a command that waited for a held
# record would not return before it is released.
DEADLINE = 10 * SETTLE


async def test_cancel_does_not_wait_for_records_held_against_id_order(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    admin = user_scope(tenant, "alice", ["org_admin"], [])
    async with tenant_transaction(app_pool, admin) as conn:
        arranged = await insert_batch(
            conn, tenant, creator="alice", states=("QUEUED", "QUEUED", "QUEUED")
        )
    batch_id = arranged.batch_id
    first, middle, last = sorted(arranged.record_ids)
    status = BatchStatus(app_pool, "http://127.0.0.1:8000")
    async with owner_pool.acquire() as other:
        transaction = other.transaction()
        await transaction.start()
        await other.execute(_LOCK, tenant, last)
        await other.execute(_LOCK, tenant, first)
        cancel = asyncio.ensure_future(status.cancel(admin, batch_id))
        await asyncio.sleep(0.3)
        # Rounds go on while the records stay held: release them mid-way.
        middle_state = await owner_pool.fetchval("SELECT state FROM records WHERE id = $1", middle)
        assert middle_state == "CANCELLED"
        await transaction.rollback()
        view = await asyncio.wait_for(cancel, DEADLINE)
    assert view.state is BatchState.CANCELLED
    assert view.counts.cancelled == 3


async def test_retry_does_not_wait_for_a_worker_holding_a_failed_record(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    admin = user_scope(tenant, "alice", ["org_admin"], [])
    async with tenant_transaction(app_pool, admin) as conn:
        arranged = await insert_batch(
            conn,
            tenant,
            creator="alice",
            states=("FAILED", "FAILED", "INVITED"),
            errors=[("X", "x")] * 3,
            batch_state="COMPLETED_WITH_ERRORS",
        )
    held = arranged.record_ids[0]  # FAILED
    status = BatchStatus(app_pool, "http://127.0.0.1:8000")
    async with owner_pool.acquire() as worker:
        transaction = worker.transaction()
        await transaction.start()
        # A redelivered job's issue transaction holding a FAILED record for longer than the
        # command keeps trying: the command returns anyway, having retried the rest.
        await worker.execute(_LOCK, tenant, held)
        view = await asyncio.wait_for(status.retry(admin, arranged.batch_id), DEADLINE)
        await transaction.rollback()
    assert view.state is BatchState.IN_PROGRESS
    states = dict(
        await owner_pool.fetch(
            "SELECT id, state FROM records WHERE batch_id = $1", arranged.batch_id
        )
    )
    assert states[held] == "FAILED"
    assert states[arranged.record_ids[1]] == "PENDING"
    # A second call takes the one the worker held.
    view = await status.retry(admin, arranged.batch_id)
    assert view.counts.failed == 0
