"""A second job for a record another job issued moments ago leaves the invitation to it: it
waits (at the same attempt) while the lease runs, and invites only if the record is still
ISSUED after it (the worker that issued it died before writing an outcome)."""

from __future__ import annotations

import asyncio

import asyncpg

from credbatch.config import Settings
from tests.fixtures.batches import record_states
from tests.fixtures.issuance import (
    Arranged,
    Sinks,
    arrange_batch,
    publish_jobs,
    running_worker,
    wait_for_batch,
)

LEASE = 2.0


async def _issued_moments_ago(owner: asyncpg.Pool, arranged: Arranged) -> None:
    """Put the invited batch back as a worker leaves it between its issue commit and its
    outcome: ISSUED just now, no outcome, no send stamped (the state guard and the triggers
    are off for this arrangement only)."""
    async with owner.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(
            "UPDATE records SET state = 'ISSUED', invited_at = NULL, email_sent_at = NULL,"
            " error_code = NULL, error_message = NULL, attempt = 1, issued_at = now(),"
            " updated_at = now()"
            " WHERE batch_id = $1",
            arranged.batch_id,
        )
        await conn.execute(
            "DELETE FROM record_sends WHERE record_id = ANY($1::uuid[])", arranged.record_ids
        )
        await conn.execute(
            "UPDATE batches SET state = 'IN_PROGRESS', completed_at = NULL WHERE id = $1",
            arranged.batch_id,
        )


async def _invited_then_issued_again(
    settings: Settings, owner: asyncpg.Pool, sinks: Sinks
) -> Arranged:
    """A batch of three records invited by a worker, then put back as just issued
    (``_issued_moments_ago``), the sink emptied."""
    arranged = await arrange_batch(owner, 3, mediums=("EMAIL",), certificate=False)
    await publish_jobs(settings, arranged)
    async with running_worker(settings):
        assert await wait_for_batch(owner, arranged.batch_id) == "COMPLETED"
    await _issued_moments_ago(owner, arranged)
    sinks.smtp.handler.messages.clear()
    return arranged


async def test_a_record_issued_moments_ago_is_left_to_its_worker_for_the_lease(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    settings = worker_settings.with_overrides(invite_lease=LEASE)
    arranged = await _invited_then_issued_again(settings, owner_pool, sinks)

    # Second copies of the three jobs, while the lease of the (notional) first worker runs.
    loop = asyncio.get_running_loop()
    started = loop.time()
    await publish_jobs(settings, arranged)
    async with running_worker(settings):
        await asyncio.sleep(LEASE / 2)
        assert sinks.smtp.messages == []  # left to the worker that issued them
        assert await record_states(owner_pool, arranged.batch_id) == {"ISSUED": 3}
        # Past the lease the records are still ISSUED: that worker died; these jobs invite.
        assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED"
    assert loop.time() - started >= LEASE * 0.9
    assert await record_states(owner_pool, arranged.batch_id) == {"INVITED": 3}
    assert sorted(recipients[0] for recipients, _ in sinks.smtp.messages) == sorted(
        row["email"] for row in arranged.rows
    )
    # The wait burnt no attempt.
    attempts = await owner_pool.fetch(
        "SELECT attempt FROM records WHERE batch_id = $1", arranged.batch_id
    )
    assert {row["attempt"] for row in attempts} == {1}


async def test_without_a_lease_a_redelivered_issued_record_is_invited_at_once(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    settings = worker_settings.with_overrides(invite_lease=0.0)
    arranged = await _invited_then_issued_again(settings, owner_pool, sinks)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await publish_jobs(settings, arranged)
    async with running_worker(settings):
        assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED"
    assert loop.time() - started < LEASE
    assert len(sinks.smtp.messages) == 3
