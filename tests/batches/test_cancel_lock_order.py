"""CancelBatch never waits for a record someone else holds, and still cancels it later.

The relay holds the records it claimed while it publishes (up to its publish timeout), and a
worker holds its group's records while it issues them. The cancel marks the batch first, then
cancels the records nobody holds, in id order, round after round.
"""

from __future__ import annotations

import asyncio

import asyncpg

from credbatch.tenancy import user_scope
from services.batch_status.status import SETTLE, BatchStatus
from tests.fixtures.batches import insert_batch

# A cancel that meets held records goes on taking the others, round after round, for SETTLE
# seconds. Ten times that is its deadline here: room for a loaded machine, while a cancel
# that waited for a held record would not return before the record is released.
DEADLINE = 10 * SETTLE


async def test_cancel_skips_a_held_record_and_takes_it_once_released(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    arranged = await insert_batch(owner_pool, creator="tester", states=["QUEUED"] * 5)
    held = arranged.record_ids[2]
    scope = user_scope(arranged.tenant_id, "tester", ["org_admin"], ["default"])
    status = BatchStatus(app_pool, "http://public.test")
    worker = await owner_pool.acquire()
    worker_tx = worker.transaction()
    rolled_back = False
    try:
        await worker_tx.start()
        await worker.execute("SELECT 1 FROM records WHERE id = $1 FOR UPDATE", held)
        cancelling = asyncio.create_task(status.cancel(scope, arranged.batch_id))
        await asyncio.sleep(0.2)
        # The others are cancelled while the held one is still locked.
        states = dict(
            await owner_pool.fetch(
                "SELECT id, state FROM records WHERE batch_id = $1", arranged.batch_id
            )
        )
        assert states[held] == "QUEUED"
        assert {s for i, s in states.items() if i != held} == {"CANCELLED"}
        batch_state = await owner_pool.fetchval(
            "SELECT state FROM batches WHERE id = $1", arranged.batch_id
        )
        assert batch_state == "CANCELLED"
        await worker_tx.rollback()
        rolled_back = True
        view = await asyncio.wait_for(cancelling, DEADLINE)
    finally:
        if not rolled_back:
            await worker_tx.rollback()
        await owner_pool.release(worker)
    assert view.counts.cancelled == 5
    left = await owner_pool.fetchval(
        "SELECT count(*) FROM records WHERE batch_id = $1 AND state <> 'CANCELLED'",
        arranged.batch_id,
    )
    assert left == 0


async def test_cancel_returns_while_a_record_stays_held(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool, relay_pool: asyncpg.Pool
) -> None:
    arranged = await insert_batch(owner_pool, creator="tester", states=["PENDING"] * 3)
    scope = user_scope(arranged.tenant_id, "tester", ["org_admin"], ["default"])
    status = BatchStatus(app_pool, "http://public.test")
    relay = await owner_pool.acquire()
    try:
        async with relay.transaction():
            # A relay window awaiting confirms for the first record, longer than any cancel.
            await relay.execute(
                "SELECT 1 FROM records WHERE id = $1 FOR UPDATE", arranged.record_ids[0]
            )
            # It returns while the record is still held: this block holds it until the end.
            view = await asyncio.wait_for(status.cancel(scope, arranged.batch_id), DEADLINE)
    finally:
        await owner_pool.release(relay)
    assert view.counts.cancelled == 2
    stored = await owner_pool.fetchval("SELECT state FROM batches WHERE id = $1", arranged.batch_id)
    assert stored == "CANCELLED"
    # The relay claims nothing of a cancelled batch; the sweeper closes the record left.
    left = await owner_pool.fetchval(
        "SELECT state FROM records WHERE id = $1", arranged.record_ids[0]
    )
    assert left == "PENDING"
    swept = await relay_pool.fetch(
        "SELECT record_id, action FROM sweep_stuck(0, '{}'::double precision[], 100)"
    )
    assert (arranged.record_ids[0], "cancelled") in {tuple(r) for r in swept}
    left = await owner_pool.fetchval(
        "SELECT state FROM records WHERE id = $1", arranged.record_ids[0]
    )
    assert left == "CANCELLED"
