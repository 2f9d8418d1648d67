"""A batch cancelled while its group is inside the issue transaction gets no invitation."""

from __future__ import annotations

import asyncio

import asyncpg

from credbatch.config import Settings
from tests.fixtures.batches import record_states
from tests.fixtures.issuance import Sinks, arrange_batch, publish_jobs, running_worker

BLOCKED = """
SELECT count(*) FROM pg_stat_activity
WHERE wait_event_type = 'Lock' AND $1::int = ANY(pg_blocking_pids(pid))
"""


async def _wait(owner_pool: asyncpg.Pool, query: str, *args: object) -> None:
    for _ in range(400):
        if await owner_pool.fetchval(query, *args):
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"never true: {query}")


async def test_cancel_committed_while_the_records_are_issued_stops_the_invitation(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    arranged = await arrange_batch(owner_pool, 1, mediums=("EMAIL",), certificate=False)
    # Past its first group: the issue transaction does not touch the batch row.
    await owner_pool.execute(
        "UPDATE batches SET state = 'IN_PROGRESS' WHERE id = $1", arranged.batch_id
    )
    async with owner_pool.acquire() as holder:
        held = holder.transaction()
        await held.start()
        await holder.execute(
            "SELECT 1 FROM records WHERE id = $1 FOR UPDATE", arranged.record_ids[0]
        )
        await publish_jobs(worker_settings, arranged)
        async with running_worker(worker_settings):
            # The group's issue transaction has read the batch (IN_PROGRESS) and waits for
            # the record: the cancel commits now, before any credential is stored.
            await _wait(owner_pool, BLOCKED, holder.get_server_pid())
            await owner_pool.execute(
                "UPDATE batches SET state = 'CANCELLED', cancelled_at = now() WHERE id = $1",
                arranged.batch_id,
            )
            await held.commit()
            await _wait(
                owner_pool,
                "SELECT count(*) = 1 FROM records WHERE batch_id = $1 AND state = 'CANCELLED'",
                arranged.batch_id,
            )
    # Issued (the transaction had read the batch before the cancel), but never invited.
    assert await record_states(owner_pool, arranged.batch_id) == {"CANCELLED": 1}
    credentials = await owner_pool.fetchval(
        "SELECT count(*) FROM credentials WHERE batch_id = $1", arranged.batch_id
    )
    assert credentials == 1
    ours = {r["email"] for r in arranged.rows}
    assert not [m for m in sinks.smtp.messages if set(m[0]) & ours]
