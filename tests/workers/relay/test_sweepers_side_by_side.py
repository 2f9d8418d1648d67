"""Two relays' sweepers at once: each stuck record is swept by one of them, once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence

import aio_pika
import pytest_asyncio

from credbatch.config import Settings
from credbatch.gen.jobs.v1 import issuance_job_pb2
from credbatch.messaging import (
    WORK_QUEUE,
    ConfirmingPublisher,
    OutgoingMessage,
    declare_topology,
)
from tests.fixtures.dispatch import FairDb, add_pending_batch
from tests.fixtures.lifecycle import walk
from workers.relay.sweeper import Sweeper


@pytest_asyncio.fixture(loop_scope="session")
async def channel(
    fresh_amqp_url: str, amqp_settings: Settings
) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(fresh_amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, amqp_settings)
        yield channel
    finally:
        await connection.close()


class HeldPublisher:
    """Publishes once ``release`` is set: the sweep holding its rows meanwhile."""

    def __init__(self, inner: ConfirmingPublisher) -> None:
        self._inner = inner
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def publish_many(
        self,
        messages: Sequence[OutgoingMessage],
        timeout: float,  # the Publisher protocol's per-publish timeout
    ) -> None:
        self.holding.set()
        await self.release.wait()
        await self._inner.publish_many(messages, timeout)


async def stuck_issued(fair: FairDb, count: int) -> list[uuid.UUID]:
    batch = await add_pending_batch(fair.owner, uuid.uuid4(), count)
    ids: list[uuid.UUID] = [
        r["id"] for r in await fair.owner.fetch("SELECT id FROM records WHERE batch_id = $1", batch)
    ]
    await walk(fair.owner, ids, ["ISSUED"] * count)
    await fair.owner.execute(
        "UPDATE records SET attempt = 1, updated_at = now() - interval '1 hour'"
        " WHERE id = ANY($1::uuid[])",
        ids,
    )
    return ids


async def test_a_second_sweeper_skips_the_rows_the_first_holds(
    fair_db: FairDb, channel: aio_pika.abc.AbstractChannel
) -> None:
    ids = await stuck_issued(fair_db, 6)
    held = HeldPublisher(ConfirmingPublisher(channel))
    first = Sweeper(fair_db.relay, held, stuck_after=10, retry_delays=[1.0], limit=3)
    second = Sweeper(
        fair_db.relay, ConfirmingPublisher(channel), stuck_after=10, retry_delays=[1.0]
    )
    first_pass = asyncio.create_task(first.sweep_once())
    await asyncio.wait_for(held.holding.wait(), 10)
    # The first holds three rows, locked, uncommitted: the second takes the other three.
    second_result = await asyncio.wait_for(second.sweep_once(), 10)
    held.release.set()
    first_result = await first_pass
    assert (first_result.republished, second_result.republished) == (3, 3)
    # Both committed: nothing is stuck any more, for either.
    assert (await second.sweep_once()).total == 0
    assert (await first.sweep_once()).total == 0

    queue = await channel.declare_queue(WORK_QUEUE, passive=True)
    published: Counter[str] = Counter()
    while (message := await queue.get(fail=False)) is not None:
        job = issuance_job_pb2.IssuanceJob.FromString(message.body)
        published[job.record_id] += 1
        await message.ack()
    assert published == Counter({str(i): 1 for i in ids})
