"""The relay survives the broker dropping its connection mid-publish, and loses no job.

Runs ``python -m workers.relay`` as a subprocess on a vhost of its own and, while it publishes
a batch, has the broker close every connection of that vhost (``rabbitmqctl
close_all_connections --vhost``: what clients see when the broker restarts, without
restarting the shared server). The relay's robust connection must reconnect by itself: the
same process goes on until every record is QUEUED, its job on the queue at least once, and it
still stops cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlparse

import aio_pika
import asyncpg
import pytest

from credbatch.config import Settings
from credbatch.messaging import WORK_QUEUE
from tests.fixtures.amqp import jobs_in
from tests.fixtures.batches import record_states
from tests.fixtures.relay import RELAY_WINDOW, MakePending, start_relay

RECORDS = 8000


def close_vhost_connections(amqp_url: str) -> None:
    """Have the broker close every client connection of the URL's vhost."""
    vhost = unquote(urlparse(amqp_url).path.lstrip("/"))
    subprocess.run(
        [
            "rabbitmqctl",
            "-q",
            "close_all_connections",
            "--vhost",
            vhost,
            "--limit",
            "100",
            "test: broker going away",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.mark.slow
async def test_connections_closed_by_the_broker_mid_publish_lose_no_job(
    settings: Settings,
    owner_pool: asyncpg.Pool,
    make_pending: MakePending,
    fresh_amqp_url: str,
    tmp_path: Path,
) -> None:
    log_path = tmp_path / "relay.log"
    batch = await make_pending(RECORDS)
    with log_path.open("ab") as log:
        relay = start_relay(settings, fresh_amqp_url, log)
    try:
        closes = 0
        # Drop the connections twice while jobs flow: the second time only after the relay
        # has reconnected by itself and queued more records.
        threshold = 600
        for _ in range(2):
            for _ in range(3000):
                if (await record_states(owner_pool, batch.batch_id)).get("QUEUED", 0) >= threshold:
                    break
                assert relay.poll() is None, log_path.read_text()
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the relay made no progress: " + log_path.read_text())
            await asyncio.to_thread(close_vhost_connections, fresh_amqp_url)
            states = await record_states(owner_pool, batch.batch_id)
            if states.get("PENDING", 0) > 0:
                closes += 1
            threshold = states.get("QUEUED", 0) + 600
        assert closes >= 1, "the relay finished before the broker dropped it"

        for _ in range(1200):
            if await record_states(owner_pool, batch.batch_id) == {"QUEUED": RECORDS}:
                break
            assert relay.poll() is None, log_path.read_text()
            await asyncio.sleep(0.05)
        states = await record_states(owner_pool, batch.batch_id)
        assert states == {"QUEUED": RECORDS}, log_path.read_text()
        # The same process did all of it, and it still stops cleanly.
        assert relay.poll() is None, log_path.read_text()
        relay.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(relay.wait, 20) == 0, log_path.read_text()
    finally:
        if relay.poll() is None:
            relay.kill()
            relay.wait()

    connection = await aio_pika.connect(fresh_amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(WORK_QUEUE, passive=True)
        deliveries: Counter[str] = Counter()
        while (message := await queue.get(no_ack=True, fail=False, timeout=5)) is not None:
            for job in jobs_in(message):
                if job.batch_id == str(batch.batch_id):
                    deliveries[job.record_id] += 1
    finally:
        await connection.close()

    assert set(deliveries) == {str(r) for r in batch.record_ids}, "a job was lost"
    # Only windows in flight at a close can be published twice (confirmed, then the commit
    # or the confirm lost with the connection).
    duplicates = sum(n - 1 for n in deliveries.values())
    assert max(deliveries.values()) <= 2
    assert duplicates <= 2 * RELAY_WINDOW
