"""outbox_backlog(): PENDING records across tenants (cancelled batches aside), and their age."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from tests.fixtures.batches import insert_batch


async def _backlog(relay_pool: asyncpg.Pool) -> tuple[int, float]:
    row = await relay_pool.fetchrow(
        "SELECT pending, extract(epoch FROM now() - oldest)::float8 AS age FROM outbox_backlog()"
    )
    assert row is not None
    return row["pending"], row["age"] or 0.0


async def test_counts_pending_records_of_every_tenant_without_a_tenant_scope(
    owner_pool: asyncpg.Pool, relay_pool: asyncpg.Pool
) -> None:
    before, _ = await _backlog(relay_pool)
    await insert_batch(owner_pool, states=["PENDING"] * 3 + ["QUEUED", "INVITED"])
    await insert_batch(owner_pool, states=["PENDING"] * 2, batch_state="IN_PROGRESS")
    # Left out, as the relay leaves them: a cancelled batch's records.
    await insert_batch(owner_pool, states=["PENDING"] * 4, batch_state="CANCELLED")
    after, _ = await _backlog(relay_pool)
    assert after - before == 5


async def test_the_age_is_that_of_the_record_waiting_longest(
    owner_pool: asyncpg.Pool, relay_pool: asyncpg.Pool
) -> None:
    arranged = await insert_batch(owner_pool, states=["PENDING", "PENDING"])
    await owner_pool.execute(
        "UPDATE records SET updated_at = now() - $2::interval WHERE id = $1",
        arranged.record_ids[0],
        timedelta(hours=2),
    )
    _, age = await _backlog(relay_pool)
    assert age >= 7200
    await owner_pool.execute(
        "UPDATE records SET state = 'QUEUED' WHERE id = $1", arranged.record_ids[0]
    )
    _, age = await _backlog(relay_pool)
    assert age < 7200


async def test_the_relay_role_can_call_it_and_reads_no_record(
    relay_pool: asyncpg.Pool,
) -> None:
    # The relay's role reads no table: only the function reaches the records.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await relay_pool.fetchval("SELECT count(*) FROM records")
    pending, _ = await _backlog(relay_pool)
    assert pending >= 0
