"""Worker processes: two sharing one batch, and one killed mid-batch then restarted."""

from __future__ import annotations

import asyncio
import signal

import asyncpg

from credbatch.config import Settings
from tests.fixtures.batches import record_states
from tests.fixtures.issuance import (
    Sinks,
    arrange_batch,
    publish_jobs,
    spawn_worker,
    stop_process,
    wait_for_batch,
)


async def _one_credential_each(owner_pool: asyncpg.Pool, batch_id: object, total: int) -> None:
    row = await owner_pool.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT record_id) AS records,"
        " count(DISTINCT (status_list_id, status_index)) AS indexes"
        " FROM credentials WHERE batch_id = $1",
        batch_id,
    )
    assert (row["n"], row["records"], row["indexes"]) == (total, total, total)


async def test_two_worker_processes_issue_exactly_one_credential_per_record(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    arranged = await arrange_batch(owner_pool, 2000, mediums=("EMAIL",), certificate=False)
    await publish_jobs(worker_settings, arranged)
    workers = [spawn_worker(worker_settings) for _ in range(2)]
    try:
        assert await wait_for_batch(owner_pool, arranged.batch_id, timeout=120) == "COMPLETED"
    finally:
        codes = [await stop_process(w) for w in workers]
    assert codes == [0, 0]
    assert await record_states(owner_pool, arranged.batch_id) == {"INVITED": 2000}
    await _one_credential_each(owner_pool, arranged.batch_id, 2000)
    assert len(sinks.smtp.messages) == 2000
    # Both processes took part.
    keys = await owner_pool.fetchval(
        "SELECT count(*) FROM signing_keys WHERE tenant_id = $1", arranged.tenant_id
    )
    assert keys == 1


async def test_sigkill_mid_batch_then_restart_loses_nothing_and_issues_nothing_twice(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    arranged = await arrange_batch(owner_pool, 1500, mediums=("EMAIL",), certificate=True)
    await publish_jobs(worker_settings, arranged)
    worker = spawn_worker(worker_settings)
    try:
        for _ in range(600):
            invited = await owner_pool.fetchval(
                "SELECT count(*) FROM records WHERE batch_id = $1 AND state = 'INVITED'",
                arranged.batch_id,
            )
            if invited >= 200:
                break
            await asyncio.sleep(0.05)
        assert await stop_process(worker, signal.SIGKILL) == -signal.SIGKILL
        states = await record_states(owner_pool, arranged.batch_id)
        assert states.get("INVITED", 0) < 1500, "the kill came too late to test anything"
        worker = spawn_worker(worker_settings)
        assert await wait_for_batch(owner_pool, arranged.batch_id, timeout=120) == "COMPLETED"
    finally:
        await stop_process(worker)
    assert await record_states(owner_pool, arranged.batch_id) == {"INVITED": 1500}
    await _one_credential_each(owner_pool, arranged.batch_id, 1500)
    certificates = await owner_pool.fetchval(
        "SELECT count(*) FROM certificates c JOIN records r"
        " ON r.tenant_id = c.tenant_id AND r.id = c.record_id WHERE r.batch_id = $1",
        arranged.batch_id,
    )
    assert certificates == 1500
    # Every holder got its invitation (at least once: a kill between SMTP's acceptance and
    # the commit of email_sent_at can only duplicate, never lose, an email).
    assert {recipients[0] for recipients, _ in sinks.smtp.messages} == {
        r["email"] for r in arranged.rows
    }


async def test_sigterm_finishes_jobs_in_flight_and_exits_cleanly(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    arranged = await arrange_batch(owner_pool, 1500, mediums=("EMAIL",), certificate=False)
    await publish_jobs(worker_settings, arranged)
    worker = spawn_worker(worker_settings)
    try:
        for _ in range(600):
            invited = await owner_pool.fetchval(
                "SELECT count(*) FROM records WHERE batch_id = $1 AND state = 'INVITED'",
                arranged.batch_id,
            )
            if invited >= 100:
                break
            await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        signalled = loop.time()
        assert await stop_process(worker) == 0
        assert loop.time() - signalled < worker_settings.grace_seconds + 3
        states = await record_states(owner_pool, arranged.batch_id)
        # Jobs in flight were finished, not abandoned half-way.
        assert "ISSUED" not in states, states
        assert states.get("INVITED", 0) < 1500, "the stop came too late to test anything"
        worker = spawn_worker(worker_settings)
        assert await wait_for_batch(owner_pool, arranged.batch_id, timeout=120) == "COMPLETED"
    finally:
        await stop_process(worker)
    await _one_credential_each(owner_pool, arranged.batch_id, 1500)


async def test_worker_refuses_to_start_without_a_valid_kek(worker_settings: Settings) -> None:
    worker = spawn_worker(worker_settings.with_overrides(kek="bm90LTMyLWJ5dGVz"))
    assert await asyncio.to_thread(worker.wait, 30) == 2
