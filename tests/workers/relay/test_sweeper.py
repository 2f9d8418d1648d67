"""The sweeper: stale QUEUED records back to the outbox, stale ISSUED ones published again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import pytest_asyncio

from credbatch.config import Settings
from credbatch.gen.jobs.v1 import issuance_job_pb2
from credbatch.messaging import ConfirmingPublisher, declare_topology
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


async def set_states(
    owner: asyncpg.Pool, batch_id: uuid.UUID, states: list[str], age: float
) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = [
        r["id"]
        for r in await owner.fetch(
            "SELECT id FROM records WHERE batch_id = $1 ORDER BY row_number", batch_id
        )
    ]
    await walk(owner, ids, states)
    await owner.execute(
        "UPDATE records SET attempt = 1, updated_at = now() - make_interval(secs => $2)"
        " WHERE id = ANY($1::uuid[])",
        ids,
        age,
    )
    return ids


async def test_stale_records_are_dispatched_again_and_fresh_ones_left(
    fair_db: FairDb, channel: aio_pika.abc.AbstractChannel
) -> None:
    tenant = uuid.uuid4()
    stale_batch = await add_pending_batch(fair_db.owner, tenant, 4)
    fresh_batch = await add_pending_batch(fair_db.owner, tenant, 2)
    stale = await set_states(
        fair_db.owner, stale_batch, ["QUEUED", "QUEUED", "ISSUED", "INVITED"], 60
    )
    await set_states(fair_db.owner, fresh_batch, ["QUEUED", "ISSUED"], 0)
    # Attempt 1 waits its retry delay (30 s) on top of stuck_after (10 s): 60 s is stale.
    sweeper = Sweeper(
        fair_db.relay, ConfirmingPublisher(channel), stuck_after=10, retry_delays=[30.0, 600.0]
    )
    result = await sweeper.sweep_once()
    assert (result.requeued, result.republished, result.cancelled) == (2, 1, 0)
    states = dict(
        await fair_db.owner.fetch(
            "SELECT id, state FROM records WHERE batch_id = ANY($1)", [stale_batch, fresh_batch]
        )
    )
    assert [states[i] for i in stale] == ["PENDING", "PENDING", "ISSUED", "INVITED"]
    assert sorted(s for i, s in states.items() if i not in stale) == ["ISSUED", "QUEUED"]
    # The outbox counts the requeued records, so the fair claim takes them.
    pending = await fair_db.owner.fetchval(
        "SELECT pending FROM dispatch_batches WHERE batch_id = $1", stale_batch
    )
    assert pending >= 2
    queue = await channel.declare_queue("credbatch.issuance.jobs", passive=True)
    message = await queue.get(timeout=5)
    assert message is not None
    job = issuance_job_pb2.IssuanceJob.FromString(message.body)
    assert (uuid.UUID(job.record_id), job.attempt) == (stale[2], 2)
    await message.ack()
    # Touched: the next pass leaves it alone.
    assert (await sweeper.sweep_once()).republished == 0


async def test_open_records_of_a_cancelled_batch_are_cancelled(
    fair_db: FairDb, channel: aio_pika.abc.AbstractChannel
) -> None:
    tenant = uuid.uuid4()
    batch = await add_pending_batch(fair_db.owner, tenant, 3)
    ids = await set_states(fair_db.owner, batch, ["PENDING", "QUEUED", "INVITED"], 60)
    await fair_db.owner.execute(
        "UPDATE batches SET state = 'CANCELLED', cancelled_at = now() WHERE id = $1", batch
    )
    sweeper = Sweeper(
        fair_db.relay, ConfirmingPublisher(channel), stuck_after=10, retry_delays=[1.0]
    )
    result = await sweeper.sweep_once()
    assert result.cancelled >= 2
    states = dict(
        await fair_db.owner.fetch("SELECT id, state FROM records WHERE batch_id = $1", batch)
    )
    assert [states[i] for i in ids] == ["CANCELLED", "CANCELLED", "INVITED"]
