"""CancelBatch locks records in id order, the order the issuance worker locks them in.

Otherwise a cancel that scans the batch's records in another order can hold a record a worker
wants while waiting for one the worker holds: PostgreSQL then aborts one of them (a failed
CancelBatch, or a worker group sent round again).
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from credbatch.batches import repository
from credbatch.tenancy import tenant_transaction, user_scope
from tests.fixtures.batches import insert_batch


async def test_cancel_holds_lower_ids_while_waiting_for_a_locked_record(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    arranged = await insert_batch(owner_pool, creator="tester", states=["QUEUED"] * 5)
    # The first record in the table's order gets the highest id, the last the lowest.
    new_ids = sorted((uuid.uuid4() for _ in range(5)), reverse=True)
    async with owner_pool.acquire() as conn:
        for row_number, new_id in enumerate(new_ids, start=1):
            await conn.execute(
                "UPDATE records SET id = $1 WHERE batch_id = $2 AND row_number = $3",
                new_id,
                arranged.batch_id,
                row_number,
            )
    highest, lower = new_ids[0], new_ids[1:]
    scope = user_scope(arranged.tenant_id, "tester", ["org_admin"], ["default"])

    async def cancel() -> int:
        async with tenant_transaction(app_pool, scope) as conn:
            return await repository.cancel_batch(conn, arranged.batch_id)

    worker = await owner_pool.acquire()
    probe = await owner_pool.acquire()
    worker_tx = worker.transaction()
    task: asyncio.Task[int] | None = None
    rolled_back = False
    try:
        await worker_tx.start()
        # A worker holding the record with the highest id.
        await worker.execute("SELECT 1 FROM records WHERE id = $1 FOR UPDATE", highest)
        task = asyncio.create_task(cancel())
        await asyncio.sleep(0.5)
        assert not task.done()
        for record_id in lower:
            with pytest.raises(asyncpg.LockNotAvailableError):
                async with probe.transaction():
                    await probe.execute(
                        "SELECT 1 FROM records WHERE id = $1 FOR UPDATE NOWAIT", record_id
                    )
        await worker_tx.rollback()
        rolled_back = True
        assert await asyncio.wait_for(task, 10) == 5
    finally:
        if not rolled_back:
            await worker_tx.rollback()
        if task is not None and not task.done():
            await asyncio.wait_for(task, 10)
        await owner_pool.release(worker)
        await owner_pool.release(probe)
