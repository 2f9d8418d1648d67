"""outbox_backlog(): PENDING records across tenants (cancelled batches aside), and their age."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from tests.fixtures.batches import insert_batch


async def _backlog(app_pool: asyncpg.Pool) -> tuple[int, float]:
    row = await app_pool.fetchrow(
        "SELECT pending, extract(epoch FROM now() - oldest)::float8 AS age FROM outbox_backlog()"
    )
    assert row is not None
    return row["pending"], row["age"] or 0.0


async def test_counts_pending_records_of_every_tenant_without_a_tenant_scope(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    before, _ = await _backlog(app_pool)
    await insert_batch(owner_pool, states=["PENDING"] * 3 + ["QUEUED", "INVITED"])
    await insert_batch(owner_pool, states=["PENDING"] * 2, batch_state="IN_PROGRESS")
    # Left out, as the relay leaves them: a cancelled batch's records.
    await insert_batch(owner_pool, states=["PENDING"] * 4, batch_state="CANCELLED")
    after, _ = await _backlog(app_pool)
    assert after - before == 5


async def test_the_age_is_that_of_the_record_waiting_longest(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    arranged = await insert_batch(owner_pool, states=["PENDING", "PENDING"])
    await owner_pool.execute(
        "UPDATE records SET updated_at = now() - $2::interval WHERE id = $1",
        arranged.record_ids[0],
        timedelta(hours=2),
    )
    _, age = await _backlog(app_pool)
    assert age >= 7200
    await owner_pool.execute(
        "UPDATE records SET state = 'QUEUED' WHERE id = $1", arranged.record_ids[0]
    )
    _, age = await _backlog(app_pool)
    assert age < 7200


async def test_the_application_role_can_call_it_and_nothing_else_reads_records(
    app_pool: asyncpg.Pool,
) -> None:
    # Outside a tenant scope RLS hides every record from the application role itself.
    visible = await app_pool.fetchval("SELECT count(*) FROM records")
    assert visible == 0
    pending, _ = await _backlog(app_pool)
    assert pending >= 0
