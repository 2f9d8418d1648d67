"""The outcome write locks a group's records in record order, whatever order the group has:
every writer of several records does (the bounce receiver's ``public_email_deliveries``), so
two of them sharing records cannot deadlock."""

from __future__ import annotations

import asyncio

import asyncpg

from credbatch.batches.model import RecordState
from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.batches import insert_batch
from workers.issuance.outcome_repository import RecordOutcome, write_outcomes


async def _waiting(owner_pool: asyncpg.Pool, pid: int) -> None:
    for _ in range(200):
        if await owner_pool.fetchval(
            "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid
        ):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the outcome write never waited for the lock")


async def test_a_group_out_of_record_order_locks_the_first_record_first(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    # A tenant with many records, so the update is driven by the group's ids (their order),
    # not by a walk of the tenant's records in key order.
    batch = await insert_batch(owner_pool, states=["ISSUED"] * 400)
    await owner_pool.execute("ANALYZE records")
    first, last = sorted(batch.record_ids)[:2]
    outcomes = [
        RecordOutcome(record, RecordState.INVITED, True, False, None, None, 1)
        for record in (last, first)  # the group's own order: the last record first
    ]
    async with owner_pool.acquire() as holder:
        holding = holder.transaction()
        await holding.start()
        await holder.execute("SELECT 1 FROM records WHERE id = $1 FOR UPDATE", last)
        async with tenant_transaction(app_pool, service_scope(batch.tenant_id)) as conn:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            writing = asyncio.ensure_future(write_outcomes(conn, batch.tenant_id, outcomes))
            await _waiting(owner_pool, pid)
            # The write holds the first record and waits for the last: taking the first now
            # would close a cycle, so it is not free.
            taken = await holder.fetchval(
                "SELECT count(*) FROM (SELECT 1 FROM records WHERE id = $1"
                " FOR UPDATE SKIP LOCKED) AS free",
                first,
            )
            assert taken == 0
            await holding.rollback()
            await writing
    states = await owner_pool.fetch(
        "SELECT state FROM records WHERE id = ANY($1::uuid[])", [first, last]
    )
    assert [r["state"] for r in states] == ["INVITED", "INVITED"]
