"""Transient and permanent delivery failures, and jobs that must be dead-lettered."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from credbatch.config import Settings
from credbatch.messaging import DEAD_QUEUE, connect
from credbatch.messaging.topology import declare_topology
from tests.fixtures.batches import record_states
from tests.fixtures.issuance import (
    Sinks,
    arrange_batch,
    job_body,
    publish_jobs,
    publish_raw,
    running_worker,
    wait_for_batch,
)


async def test_smtp_down_then_back_retries_and_completes(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    arranged = await arrange_batch(owner_pool, 20, mediums=("EMAIL",), certificate=False)
    await sinks.smtp.stop()
    await publish_jobs(worker_settings, arranged)
    async with running_worker(worker_settings):
        # Wait until the first attempts failed and were counted, then bring SMTP back.
        for _ in range(100):
            retried = await owner_pool.fetchval(
                "SELECT count(*) FROM records WHERE batch_id = $1 AND attempt >= 2"
                " AND error_code = 'SMTP_UNAVAILABLE'",
                arranged.batch_id,
            )
            if retried == 20:
                break
            await asyncio.sleep(0.05)
        assert retried == 20
        assert await record_states(owner_pool, arranged.batch_id) == {"ISSUED": 20}
        await sinks.smtp.start()
        assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED"
    assert await record_states(owner_pool, arranged.batch_id) == {"INVITED": 20}
    assert sorted(recipients[0] for recipients, _ in sinks.smtp.messages) == sorted(
        r["email"] for r in arranged.rows
    )
    # The retry did not issue a second credential.
    credentials = await owner_pool.fetchval(
        "SELECT count(*) FROM credentials WHERE batch_id = $1", arranged.batch_id
    )
    assert credentials == 20
    cleared = await owner_pool.fetchval(
        "SELECT count(*) FROM records WHERE batch_id = $1 AND error_code IS NULL",
        arranged.batch_id,
    )
    assert cleared == 20


async def test_smtp_refusing_one_address_fails_only_that_record(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    arranged = await arrange_batch(owner_pool, 10, mediums=("EMAIL",), certificate=False)
    refused = arranged.rows[3]["email"]
    sinks.smtp.handler.refuse[refused] = "Mailbox does not exist"
    await publish_jobs(worker_settings, arranged)
    async with running_worker(worker_settings):
        assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED_WITH_ERRORS"
    assert await record_states(owner_pool, arranged.batch_id) == {"INVITED": 9, "FAILED": 1}
    failed = await owner_pool.fetchrow(
        "SELECT email, error_code, error_message FROM records WHERE batch_id = $1"
        " AND state = 'FAILED'",
        arranged.batch_id,
    )
    assert failed["email"] == refused
    assert failed["error_code"] == "SMTP_REJECTED"
    assert failed["error_message"] == "550 5.1.1 Mailbox does not exist"
    assert refused not in {recipients[0] for recipients, _ in sinks.smtp.messages}


async def test_sms_provider_errors_retry_then_fail_after_max_attempts(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    arranged = await arrange_batch(owner_pool, 3, mediums=("SMS",), certificate=False)
    sinks.sms.state.fail_status = 503
    await publish_jobs(worker_settings, arranged)
    async with running_worker(worker_settings):
        assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED_WITH_ERRORS"
        dead = await _dead_letters(worker_settings, 3)
    rows = await owner_pool.fetch(
        "SELECT state, attempt, error_code, error_message FROM records WHERE batch_id = $1",
        arranged.batch_id,
    )
    assert {(r["state"], r["attempt"], r["error_code"]) for r in rows} == {
        ("FAILED", worker_settings.max_attempts, "SMS_TEMPORARY_FAILURE")
    }
    assert all("Injected failure 503" in r["error_message"] for r in rows)
    assert len(dead) == 3


async def test_sms_rejected_by_provider_is_permanent(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    arranged = await arrange_batch(owner_pool, 2, mediums=("SMS",), certificate=False)
    sinks.sms.state.fail_status = 400
    await publish_jobs(worker_settings, arranged)
    async with running_worker(worker_settings):
        assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED_WITH_ERRORS"
    rows = await owner_pool.fetch(
        "SELECT attempt, error_code FROM records WHERE batch_id = $1", arranged.batch_id
    )
    assert {(r["attempt"], r["error_code"]) for r in rows} == {(1, "SMS_REJECTED")}


async def _dead_letters(settings: Settings, expected: int, timeout: float = 10) -> list[bytes]:
    connection = await connect(settings)
    try:
        channel = await connection.channel()
        await declare_topology(channel, settings)
        queue = await channel.get_queue(DEAD_QUEUE)
        bodies: list[bytes] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while len(bodies) < expected and asyncio.get_running_loop().time() < deadline:
            message = await queue.get(fail=False)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            bodies.append(message.body)
            await message.ack()
        return bodies
    finally:
        await connection.close()


async def test_foreign_and_malformed_jobs_are_dead_lettered_and_change_nothing(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    victim = await arrange_batch(owner_pool, 1, mediums=("EMAIL",), certificate=False)
    attacker = await arrange_batch(owner_pool, 1, mediums=("EMAIL",), certificate=False)
    # The attacker's tenant names the victim's record (and batch).
    foreign = job_body(attacker.tenant_id, victim.batch_id, victim.record_ids[0])
    wrong_batch = job_body(attacker.tenant_id, uuid.uuid4(), attacker.record_ids[0])
    await publish_raw(worker_settings, foreign)
    await publish_raw(worker_settings, wrong_batch)
    await publish_raw(worker_settings, b"\xff\x00 not a protobuf")
    await publish_raw(worker_settings, job_body(uuid.uuid4(), uuid.uuid4(), uuid.uuid4())[:-3])
    unknown_tenant = uuid.uuid4()
    await publish_raw(worker_settings, job_body(unknown_tenant, uuid.uuid4(), uuid.uuid4()))
    async with running_worker(worker_settings):
        dead = await _dead_letters(worker_settings, 5)
    assert len(dead) == 5
    # Not even the tenant row of a job naming an unknown tenant was written.
    assert (
        await owner_pool.fetchval("SELECT count(*) FROM tenants WHERE id = $1", unknown_tenant) == 0
    )
    assert foreign in dead and wrong_batch in dead
    for arranged in (victim, attacker):
        assert await record_states(owner_pool, arranged.batch_id) == {"QUEUED": 1}
        state = await owner_pool.fetchval(
            "SELECT state FROM batches WHERE id = $1", arranged.batch_id
        )
        assert state == "QUEUED"
        count = await owner_pool.fetchval(
            "SELECT count(*) FROM credentials WHERE tenant_id = $1", arranged.tenant_id
        )
        assert count == 0
    assert sinks.smtp.messages == []


async def test_cancelled_records_and_batches_are_skipped(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    cancelled_batch = await arrange_batch(owner_pool, 3, mediums=("EMAIL",), certificate=False)
    await owner_pool.execute(
        "UPDATE batches SET state = 'CANCELLED', cancelled_at = now() WHERE id = $1",
        cancelled_batch.batch_id,
    )
    partly = await arrange_batch(owner_pool, 3, mediums=("EMAIL",), certificate=False)
    await owner_pool.execute(
        "UPDATE records SET state = 'CANCELLED' WHERE id = $1", partly.record_ids[0]
    )
    await publish_jobs(worker_settings, cancelled_batch)
    await publish_jobs(worker_settings, partly)
    async with running_worker(worker_settings):
        assert await wait_for_batch(owner_pool, partly.batch_id) == "COMPLETED"
        dead = await _dead_letters(worker_settings, 1, timeout=1)
    assert dead == []
    assert await record_states(owner_pool, cancelled_batch.batch_id) == {"QUEUED": 3}
    assert await record_states(owner_pool, partly.batch_id) == {"CANCELLED": 1, "INVITED": 2}
    issued = await owner_pool.fetch(
        "SELECT record_id FROM credentials WHERE batch_id = ANY($1::uuid[])",
        [cancelled_batch.batch_id, partly.batch_id],
    )
    assert {r["record_id"] for r in issued} == set(partly.record_ids[1:])
    assert len(sinks.smtp.messages) == 2
