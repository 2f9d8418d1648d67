"""The janitor process killed with SIGKILL mid-purge: every record is either wholly erased or
untouched (each step commits or rolls back whole), and the next pass finishes the rest."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys

import asyncpg
import pytest

from credbatch.config import Settings
from tests.fixtures.processes import process_env
from tests.workers.janitor.test_prune import FLAT_OUT, PERIODS
from tests.workers.janitor.world import ended_batch
from workers.janitor.janitor import run_pass

RECORDS = 20_000


async def _purged(owner_pool: asyncpg.Pool, batch_id: object) -> int:
    count: int = await owner_pool.fetchval(
        "SELECT count(*) FROM records WHERE batch_id = $1 AND purged_at IS NOT NULL", batch_id
    )
    return count


@pytest.mark.integration
async def test_a_killed_janitor_leaves_whole_steps_and_the_next_pass_finishes(
    db_settings: Settings, owner_pool: asyncpg.Pool, janitor_pool: asyncpg.Pool
) -> None:
    batch = await ended_batch(owner_pool, 60, ("FAILED",))
    await owner_pool.execute(
        "INSERT INTO records (tenant_id, id, batch_id, row_number, state, email, attributes)"
        " SELECT $1, gen_random_uuid(), $2, i, 'FAILED', 'h' || i || '@example.org',"
        " jsonb_build_object('name', 'Holder ' || i) FROM generate_series(2, $3) i",
        batch.tenant_id,
        batch.batch_id,
        RECORDS,
    )
    env = process_env(
        db_settings,
        CREDBATCH_JANITOR_STEP_ROWS="5",
        CREDBATCH_JANITOR_INTERVAL="3600",
        CREDBATCH_JANITOR_SHARE=str(FLAT_OUT),
    )
    janitor = subprocess.Popen(
        [sys.executable, "-m", "workers.janitor"], env=env, stdout=subprocess.DEVNULL
    )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while await _purged(owner_pool, batch.batch_id) < 50:
            assert loop.time() < deadline, "the janitor purged nothing"
            assert janitor.poll() is None, "the janitor exited"
            await asyncio.sleep(0.02)
    finally:
        janitor.send_signal(signal.SIGKILL)
        janitor.wait(timeout=30)

    cut = await _purged(owner_pool, batch.batch_id)
    assert 0 < cut < RECORDS
    # The constraint records_purged_empty holds every row; what the kill left: whole rows.
    assert (
        await owner_pool.fetchval(
            "SELECT count(*) FROM records WHERE batch_id = $1 AND purged_at IS NULL"
            " AND (email IS NULL OR attributes = '{}')",
            batch.batch_id,
        )
        == 0
    )
    assert not await owner_pool.fetchval(
        "SELECT purged_at IS NOT NULL FROM batches WHERE id = $1", batch.batch_id
    )

    result = await run_pass(janitor_pool, PERIODS, 1000, asyncio.Event(), share=FLAT_OUT)

    assert result.purged >= RECORDS - cut
    assert await _purged(owner_pool, batch.batch_id) == RECORDS
    assert await owner_pool.fetchval(
        "SELECT purged_at IS NOT NULL FROM batches WHERE id = $1", batch.batch_id
    )
