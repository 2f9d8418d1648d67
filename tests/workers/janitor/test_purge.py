"""The retention purge: what it erases, what it keeps, which batches it leaves alone, and that
only the janitor's role may run it."""

from __future__ import annotations

import asyncpg
import pytest

from tests.workers.janitor.world import ended_batch, purge_all


async def test_an_old_batch_loses_its_personal_data_and_keeps_its_history(
    owner_pool: asyncpg.Pool, janitor_pool: asyncpg.Pool
) -> None:
    old = await ended_batch(
        owner_pool, 31, ("INVITED", "FAILED", "CLAIMED", "REVOKED", "CANCELLED")
    )
    recent = await ended_batch(owner_pool, 10, tenant_id=old.tenant_id)
    await owner_pool.execute(
        "UPDATE records SET revoke_reason = 'asked by Holder 3' WHERE batch_id = $1"
        " AND state = 'REVOKED'",
        old.batch_id,
    )
    before = await owner_pool.fetch(
        "SELECT id, state, row_number, error_code, created_at, updated_at FROM records"
        " WHERE batch_id = $1 ORDER BY row_number",
        old.batch_id,
    )

    # Two records a step: three steps for the five records, whatever else is due meanwhile.
    assert await purge_all(janitor_pool) >= 5

    after = await owner_pool.fetch(
        "SELECT id, state, row_number, error_code, created_at, updated_at, email, phone,"
        " attributes, error_message, revoke_reason, purged_at, purge_reason FROM records"
        " WHERE batch_id = $1 ORDER BY row_number",
        old.batch_id,
    )
    assert [tuple(r.values())[:6] for r in after] == [tuple(r.values()) for r in before]
    for row in after:
        erased = ("email", "phone", "attributes", "error_message", "revoke_reason")
        assert tuple(row[c] for c in erased) == (None, None, {}, None, None)
        assert row["purged_at"] is not None
        assert row["purge_reason"] == "RETENTION"
    assert await owner_pool.fetchval(
        "SELECT purged_at IS NOT NULL FROM batches WHERE id = $1", old.batch_id
    )
    kept = await owner_pool.fetch(
        "SELECT email, attributes, purged_at FROM records WHERE batch_id = $1", recent.batch_id
    )
    assert all(r["email"] and r["attributes"] != {} and r["purged_at"] is None for r in kept)


async def test_a_second_run_changes_nothing(
    owner_pool: asyncpg.Pool, janitor_pool: asyncpg.Pool
) -> None:
    old = await ended_batch(owner_pool, 40)
    await purge_all(janitor_pool)
    stamps = await owner_pool.fetch(
        "SELECT id, purged_at FROM records WHERE batch_id = $1 ORDER BY id", old.batch_id
    )

    assert await purge_all(janitor_pool) == 0

    assert stamps == await owner_pool.fetch(
        "SELECT id, purged_at FROM records WHERE batch_id = $1 ORDER BY id", old.batch_id
    )


async def test_a_batch_with_open_records_waits_until_they_close(
    owner_pool: asyncpg.Pool, janitor_pool: asyncpg.Pool
) -> None:
    cancelled = await ended_batch(
        owner_pool, 45, ("CANCELLED", "QUEUED", "INVITED"), batch_state="CANCELLED"
    )

    await purge_all(janitor_pool)
    assert (
        await owner_pool.fetchval(
            "SELECT count(*) FROM records WHERE batch_id = $1 AND purged_at IS NOT NULL",
            cancelled.batch_id,
        )
        == 0
    )

    await owner_pool.execute(
        "UPDATE records SET state = 'CANCELLED' WHERE batch_id = $1 AND state = 'QUEUED'",
        cancelled.batch_id,
    )
    await purge_all(janitor_pool)
    assert (
        await owner_pool.fetchval(
            "SELECT count(*) FROM records WHERE batch_id = $1 AND purged_at IS NULL",
            cancelled.batch_id,
        )
        == 0
    )


async def test_a_purged_record_cannot_get_data_back_nor_return_to_the_outbox(
    owner_pool: asyncpg.Pool, janitor_pool: asyncpg.Pool
) -> None:
    old = await ended_batch(owner_pool, 31, ("FAILED",))
    await purge_all(janitor_pool)
    (record,) = old.record_ids

    with pytest.raises(asyncpg.CheckViolationError, match="records_purged_empty"):
        await owner_pool.execute("UPDATE records SET email = 'a@b.example' WHERE id = $1", record)
    with pytest.raises(asyncpg.CheckViolationError, match="records_purged_empty"):
        await owner_pool.execute("UPDATE records SET state = 'PENDING' WHERE id = $1", record)


@pytest.mark.parametrize(
    "call",
    ["SELECT * FROM janitor_purge(30, 10)", "SELECT janitor_prune('offers', now(), 10)"],
)
async def test_only_the_janitor_role_may_purge_or_prune(app_pool: asyncpg.Pool, call: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_pool.fetch(call)


async def test_a_tenant_s_own_retention_period_wins(
    owner_pool: asyncpg.Pool, janitor_pool: asyncpg.Pool
) -> None:
    longer = await ended_batch(owner_pool, 31)
    shorter = await ended_batch(owner_pool, 10)
    for batch, days in ((longer, 90), (shorter, 7)):
        await owner_pool.execute(
            "INSERT INTO tenant_profiles (tenant_id, retention_days) VALUES ($1, $2)",
            batch.tenant_id,
            days,
        )

    await purge_all(janitor_pool, days=30)

    purged = await owner_pool.fetch(
        "SELECT batch_id, bool_and(purged_at IS NOT NULL) AS all_purged FROM records"
        " WHERE batch_id = ANY ($1::uuid[]) GROUP BY batch_id",
        [longer.batch_id, shorter.batch_id],
    )
    assert {r["batch_id"]: r["all_purged"] for r in purged} == {
        longer.batch_id: False,
        shorter.batch_id: True,
    }
