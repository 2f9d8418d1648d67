"""The relay process serves publishes, confirm latency and the backlog gauges on its port."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import aio_pika
import asyncpg

from credbatch.config import Settings
from credbatch.messaging import declare_topology
from credbatch.messaging.topology import DEAD_LETTER_EXCHANGE, DEAD_QUEUE, DEAD_ROUTING_KEY
from credbatch.metrics import DEAD_LETTER_DEPTH
from tests.fixtures.processes import free_port
from tests.fixtures.relay import MakePending
from tests.fixtures.scrape import find, scrape, wait_for_sample
from workers.relay.gauges import BacklogGauges


async def test_relay_counts_published_jobs_and_samples_the_backlog(
    settings: Settings,
    fresh_amqp_url: str,
    make_pending: MakePending,
    owner_pool: asyncpg.Pool,
) -> None:
    arranged = await make_pending(30)
    port = free_port()
    env = {
        **os.environ,
        "CREDBATCH_DATABASE_URL": settings.database_url,
        "CREDBATCH_APP_DATABASE_URL": settings.app_database_url,
        "CREDBATCH_AMQP_URL": fresh_amqp_url,
        "CREDBATCH_RELAY_POLL_INTERVAL": "0.1",
        # No worker finishes anything here: the batch's other 20 records stay in the outbox.
        # Other tests' unfinished jobs must not hold this relay back: no global or tenant cap.
        "CREDBATCH_RELAY_BATCH_IN_FLIGHT": "10",
        "CREDBATCH_RELAY_MAX_IN_FLIGHT": "0",
        "CREDBATCH_RELAY_TENANT_IN_FLIGHT": "0",
        "CREDBATCH_METRICS_PORT": str(port),
    }
    relay = subprocess.Popen([sys.executable, "-m", "workers.relay"], env=env)
    try:
        # Every tenant's outbox: other tests' records may be published too.
        samples = await wait_for_sample(port, "credbatch_relay_published_total", minimum=10)
        (confirms,) = find(samples, "credbatch_relay_confirm_duration_seconds_count")
        assert confirms.value >= 1

        # A dead letter, routed as the work queue's DLX routes one: the relay's dead-letter
        # consumer takes it (this one is no job, so it is acked as such), and the depth sampled
        # afterwards is that of a drained queue.
        connection = await aio_pika.connect(fresh_amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(DEAD_LETTER_EXCHANGE)
            await exchange.publish(aio_pika.Message(b"not a job"), DEAD_ROUTING_KEY)
            queue = await channel.get_queue(DEAD_QUEUE)
            for _ in range(40):
                declared = await queue.declare()
                if declared.message_count == 0:
                    break
                await asyncio.sleep(0.25)
            assert declared.message_count == 0
        for _ in range(40):
            (depth,) = find(await scrape(port), "credbatch_dead_letter_depth")
            if depth.value == 0:
                break
            await asyncio.sleep(0.5)
        assert depth.value == 0

        samples = await scrape(port)
        (pending,) = find(samples, "credbatch_outbox_pending")
        assert pending.value >= len(arranged.record_ids) - 10
        # Sampled every 5 s: the batch's other records still wait, so the age grows past a
        # second (other tests' records may be older still).
        for _ in range(30):
            (age,) = find(await scrape(port), "credbatch_outbox_oldest_age_seconds")
            if age.value >= 1:
                break
            await asyncio.sleep(0.5)
        assert age.value >= 1
    finally:
        relay.terminate()
        assert relay.wait(20) == 0
        # Out of other tests' way: their relays publish every tenant's outbox, and count what
        # is in flight.
        await owner_pool.execute(
            "UPDATE batches SET state = 'CANCELLED' WHERE id = $1", arranged.batch_id
        )
        await owner_pool.execute(
            "UPDATE records SET state = 'CANCELLED' WHERE batch_id = $1", arranged.batch_id
        )


async def test_dead_letter_depth_is_read_from_the_broker(
    relay_pool: asyncpg.Pool, fresh_amqp_url: str, settings: Settings
) -> None:
    """With no consumer on the dead-letter queue, the sampled depth is its message count."""
    async with await aio_pika.connect(fresh_amqp_url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, settings.with_overrides(amqp_url=fresh_amqp_url))
        exchange = await channel.get_exchange(DEAD_LETTER_EXCHANGE)
        for _ in range(2):
            await exchange.publish(aio_pika.Message(b"not a job"), DEAD_ROUTING_KEY)
        gauges = BacklogGauges(relay_pool, await connection.channel())
        await gauges.sample_once()
        assert DEAD_LETTER_DEPTH.value == 2
        await (await channel.get_queue(DEAD_QUEUE)).purge()
        await gauges.sample_once()
        assert DEAD_LETTER_DEPTH.value == 0
