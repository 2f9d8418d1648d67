"""``python -m workers.relay.parked`` shows what the relay parked and leaves it parked."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid
from typing import Any

import aio_pika
import asyncpg

from credbatch.config import Settings
from credbatch.messaging import (
    DEAD_LETTER_EXCHANGE,
    DEAD_ROUTING_KEY,
    PARKED_QUEUE,
    connect,
    declare_topology,
)
from tests.fixtures.issuance import job_body
from workers.relay.dead_letters import DeadLetterConsumer


async def parked_depth(url: str) -> int:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(PARKED_QUEUE, passive=True)
        return queue.declaration_result.message_count or 0


async def run_tool(url: str, *args: str) -> list[dict[str, Any]]:
    env = {**os.environ, "CREDBATCH_AMQP_URL": url, "OTEL_SDK_DISABLED": "true"}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "workers.relay.parked", *args],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return [json.loads(line) for line in done.stdout.decode().splitlines()]


async def test_parked_messages_are_shown_and_left_in_place(
    db_settings: Settings, app_pool: asyncpg.Pool, fresh_amqp_url: str
) -> None:
    settings = db_settings.with_overrides(amqp_url=fresh_amqp_url)
    tenant, batch, record = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    garbage = b"\xff\x00 garbage"
    connection = await connect(settings)
    consumer = DeadLetterConsumer(settings, app_pool)
    try:
        await consumer.start(connection)
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, settings)
        exchange = await channel.get_exchange(DEAD_LETTER_EXCHANGE)
        await exchange.publish(aio_pika.Message(garbage, message_id="g-1"), DEAD_ROUTING_KEY)
        await exchange.publish(
            aio_pika.Message(job_body(tenant, batch, record), message_id="j-1"), DEAD_ROUTING_KEY
        )
        for _ in range(100):
            if await parked_depth(fresh_amqp_url) == 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await consumer.stop()
        await connection.close()

    shown = await run_tool(fresh_amqp_url)
    assert [m["message_id"] for m in shown] == ["g-1", "j-1"]
    malformed, unknown = shown
    assert malformed["parked_reason"] == "malformed"
    assert malformed["job"] is None
    assert malformed["size"] == len(garbage)
    assert "body" not in malformed
    assert unknown["parked_reason"] == "unknown_record"
    assert unknown["job"] == {
        "tenant_id": str(tenant),
        "batch_id": str(batch),
        "record_id": str(record),
        "attempt": 1,
    }
    # Still there, in the same order; the body only when asked for, and only as many as asked.
    assert await parked_depth(fresh_amqp_url) == 2
    (first,) = await run_tool(fresh_amqp_url, "--limit", "1", "--body")
    assert first["message_id"] == "g-1"
    assert base64.b64decode(first["body"]) == garbage
    assert await parked_depth(fresh_amqp_url) == 2


def test_a_limit_below_one_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "workers.relay.parked", "--limit", "0"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert b"--limit must be at least 1" in done.stderr
