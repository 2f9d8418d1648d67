"""The relay process killed with SIGKILL mid-publish loses no job when restarted.

Runs ``python -m workers.relay`` as a subprocess against this session's database and a vhost
of its own, kills it while a batch is half published, restarts it and counts the jobs on the
work queue: every record ends QUEUED, with its job delivered at least once and, when the kill
fell between the broker's confirm and the commit, at most twice.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import aio_pika
import asyncpg
import pytest

from credbatch.config import Settings
from credbatch.messaging import WORK_QUEUE, declare_topology
from tests.fixtures.amqp import jobs_in
from tests.fixtures.batches import record_states
from tests.fixtures.relay import MakePending, start_relay

RECORDS = 6000


@pytest.mark.slow
async def test_sigkill_mid_publish_then_restart_delivers_every_job(
    settings: Settings,
    owner_pool: asyncpg.Pool,
    make_pending: MakePending,
    fresh_amqp_url: str,
    tmp_path: Path,
) -> None:
    log_path = tmp_path / "relay.log"
    batch = await make_pending(RECORDS)
    connection = await aio_pika.connect(fresh_amqp_url)
    try:
        channel = await connection.channel()
        await declare_topology(channel, settings)

        with log_path.open("ab") as log:
            relay = start_relay(settings, fresh_amqp_url, log)
        try:
            # Kill once jobs are flowing but the batch is far from done (counted in records:
            # a message carries several of a batch's jobs).
            for _ in range(600):
                if (await record_states(owner_pool, batch.batch_id)).get("QUEUED", 0) >= 400:
                    break
                assert relay.poll() is None, log_path.read_text()
                await asyncio.sleep(0.01)
            relay.send_signal(signal.SIGKILL)
            relay.wait(timeout=10)
        finally:
            if relay.poll() is None:
                relay.kill()
        states_at_kill = await record_states(owner_pool, batch.batch_id)
        assert states_at_kill.get("PENDING", 0) > 0, "killed too late to prove anything"

        with log_path.open("ab") as log:
            restarted = start_relay(settings, fresh_amqp_url, log)
        try:
            for _ in range(1200):
                if await record_states(owner_pool, batch.batch_id) == {"QUEUED": RECORDS}:
                    break
                await asyncio.sleep(0.05)
            # SIGTERM: the relay finishes its window and exits cleanly.
            restarted.send_signal(signal.SIGTERM)
            assert restarted.wait(timeout=20) == 0, log_path.read_text()
        finally:
            if restarted.poll() is None:
                restarted.kill()
        assert await record_states(owner_pool, batch.batch_id) == {"QUEUED": RECORDS}

        queue = await channel.declare_queue(WORK_QUEUE, passive=True)
        deliveries: Counter[str] = Counter()
        while (message := await queue.get(no_ack=True, fail=False, timeout=5)) is not None:
            for job in jobs_in(message):
                if job.batch_id == str(batch.batch_id):
                    deliveries[job.record_id] += 1
    finally:
        await connection.close()

    assert set(deliveries) == {str(r) for r in batch.record_ids}, "a job was lost"
    assert max(deliveries.values()) <= 2
    duplicates = sum(1 for n in deliveries.values() if n == 2)
    # At most the window in flight at the kill is published twice.
    assert duplicates <= 200
