"""A dead-lettered job fails its record (DEAD_LETTERED) and the batch completes."""

from __future__ import annotations

import asyncio

import aio_pika
import asyncpg

from credbatch.config import Settings
from credbatch.messaging import DEAD_LETTER_EXCHANGE, DEAD_ROUTING_KEY, connect, declare_topology
from tests.fixtures.batches import insert_batch
from tests.fixtures.issuance import job_body
from workers.relay.dead_letters import DeadLetterConsumer


async def dead_letter(settings: Settings, body: bytes) -> None:
    connection = await connect(settings)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, settings)
        exchange = await channel.get_exchange(DEAD_LETTER_EXCHANGE)
        await exchange.publish(aio_pika.Message(body), DEAD_ROUTING_KEY, mandatory=True)
    finally:
        await connection.close()


async def wait_for(owner: asyncpg.Pool, sql: str, *args: object, want: object) -> object:
    value: object = None
    for _ in range(200):
        value = await owner.fetchval(sql, *args)
        if value == want:
            return value
        await asyncio.sleep(0.05)
    return value


async def test_dead_letter_fails_the_record_and_completes_the_batch(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool, db_settings: Settings, fresh_amqp_url: str
) -> None:
    settings = db_settings.with_overrides(amqp_url=fresh_amqp_url)
    arranged = await insert_batch(
        owner_pool, states=["INVITED", "ISSUED", "INVITED"], batch_state="IN_PROGRESS"
    )
    lost = arranged.record_ids[1]
    consumer = DeadLetterConsumer(settings, app_pool)
    connection = await connect(settings)
    try:
        await consumer.start(connection)
        # One the consumer cannot read, then the real one: the first is dropped, not stuck.
        await dead_letter(settings, b"\xff not a job")
        await dead_letter(settings, job_body(arranged.tenant_id, arranged.batch_id, lost))
        state = await wait_for(
            owner_pool,
            "SELECT state FROM batches WHERE id = $1",
            arranged.batch_id,
            want="COMPLETED_WITH_ERRORS",
        )
        assert state == "COMPLETED_WITH_ERRORS"
        row = await owner_pool.fetchrow("SELECT state, error_code FROM records WHERE id = $1", lost)
        assert tuple(row) == ("FAILED", "DEAD_LETTERED")
        # A dead letter for a finished record changes nothing.
        await dead_letter(
            settings, job_body(arranged.tenant_id, arranged.batch_id, arranged.record_ids[0])
        )
        await asyncio.sleep(0.5)
        first = await owner_pool.fetchval(
            "SELECT state FROM records WHERE id = $1", arranged.record_ids[0]
        )
        assert first == "INVITED"
    finally:
        await consumer.stop()
        await connection.close()
