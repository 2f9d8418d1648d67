"""Several relays at once on the real broker: every record published exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

from aio_pika.abc import AbstractRobustChannel

from credbatch.messaging import ConfirmingPublisher, Topology
from tests.fixtures.dispatch import FairDb, add_pending_batch
from workers.relay.relay import DispatchLimits, OutboxRelay


async def test_three_relays_publish_each_record_once(
    fair_db: FairDb, amqp_channel: AbstractRobustChannel, topology: Topology
) -> None:
    batches = [
        await add_pending_batch(fair_db.owner, uuid.uuid4(), rows) for rows in (1500, 700, 300)
    ] + [await add_pending_batch(fair_db.owner, uuid.uuid4(), 40) for _ in range(10)]
    expected = {
        r["id"]
        for r in await fair_db.owner.fetch(
            "SELECT id FROM records WHERE batch_id = ANY($1::uuid[])", batches
        )
    }
    relays = [
        OutboxRelay(
            fair_db.app,
            ConfirmingPublisher(amqp_channel),
            window=200,
            limits=DispatchLimits(quantum=20),
        )
        for _ in range(3)
    ]

    async def run(relay: OutboxRelay) -> int:
        windows = 0
        while (await relay.relay_window()).claimed:
            windows += 1
        return windows

    windows = await asyncio.gather(*(run(r) for r in relays))
    assert sum(windows) > 3
    published: Counter[str] = Counter()
    while (
        message := await topology.work_queue.get(no_ack=True, fail=False, timeout=5)
    ) is not None:
        published[message.message_id or ""] += 1
    assert set(published) == {str(i) for i in expected}
    assert set(published.values()) == {1}
    assert await fair_db.owner.fetchval(
        "SELECT count(*) FROM records WHERE batch_id = ANY($1::uuid[]) AND state = 'QUEUED'",
        batches,
    ) == len(expected)
