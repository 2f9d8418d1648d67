"""Topology on the real broker: idempotent declaration, quorum work queue, DLX and delays."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel

from credbatch.config import Settings
from credbatch.messaging.topology import (
    DEAD_LETTER_EXCHANGE,
    DEAD_QUEUE,
    DEAD_ROUTING_KEY,
    DELIVERY_LIMIT,
    EXCHANGE,
    PARKED_QUEUE,
    RETRY_EXCHANGE,
    WORK_QUEUE,
    WORK_ROUTING_KEY,
    Topology,
    TopologyMismatchError,
    connect,
    declare_topology,
    retry_queue_for,
    retry_queue_names,
)


async def _get(queue: AbstractQueue, timeout: float = 10.0) -> AbstractIncomingMessage:
    """Poll ``queue`` until a message arrives (basic.get; no consumer left behind)."""
    deadline = time.monotonic() + timeout
    while True:
        message = await queue.get(no_ack=False, fail=False)
        if message is not None:
            return message
        if time.monotonic() > deadline:
            raise AssertionError(f"no message on {queue.name} within {timeout}s")
        await asyncio.sleep(0.05)


def test_retry_queue_for_backs_off_and_caps() -> None:
    settings = Settings(retry_delays=(5.0, 30.0, 120.0))
    assert retry_queue_for(1, settings) == "credbatch.issuance.retry.5000"
    assert retry_queue_for(2, settings) == "credbatch.issuance.retry.30000"
    assert retry_queue_for(3, settings) == "credbatch.issuance.retry.120000"
    assert retry_queue_for(9, settings) == "credbatch.issuance.retry.120000"
    assert retry_queue_names(settings) == (
        "credbatch.issuance.retry.5000",
        "credbatch.issuance.retry.30000",
        "credbatch.issuance.retry.120000",
    )
    with pytest.raises(ValueError, match="at least 1"):
        retry_queue_for(0, settings)


async def test_declare_twice_and_concurrently(amqp_settings: Settings) -> None:
    connections = [await connect(amqp_settings, name=f"declarer-{i}") for i in range(3)]
    try:
        channels = [await c.channel() for c in connections]
        await declare_topology(channels[0], amqp_settings)
        await declare_topology(channels[0], amqp_settings)
        declared = await asyncio.gather(*(declare_topology(ch, amqp_settings) for ch in channels))
        assert {t.work_queue.name for t in declared} == {WORK_QUEUE}
    finally:
        for connection in connections:
            await connection.close()


async def test_declare_from_scratch_concurrently(fresh_amqp_url: str) -> None:
    """Several processes starting at once on an empty vhost all succeed, and agree."""
    settings = Settings(amqp_url=fresh_amqp_url, retry_delays=(1.0, 2.0))
    connections = [await connect(settings) for _ in range(4)]
    try:
        channels = [await c.channel() for c in connections]
        declared = await asyncio.gather(*(declare_topology(ch, settings) for ch in channels))
        assert [t.work_queue.name for t in declared] == [WORK_QUEUE] * 4
    finally:
        for connection in connections:
            await connection.close()
    await _assert_topology_on_broker(fresh_amqp_url)


async def _assert_topology_on_broker(url: str) -> None:
    """What the broker holds, asked on a plain connection (no robust declare cache)."""
    expected_queues: dict[str, dict[str, Any]] = {
        DEAD_QUEUE: {"x-queue-type": "quorum"},
        PARKED_QUEUE: {
            "x-queue-type": "quorum",
            "x-message-ttl": 14 * 24 * 3600 * 1000,
            "x-max-length": 100_000,
            "x-max-length-bytes": 256 * 1024 * 1024,
            "x-overflow": "drop-head",
        },
        WORK_QUEUE: {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": DEAD_ROUTING_KEY,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
        **{
            f"credbatch.issuance.retry.{ms}": {
                "x-message-ttl": ms,
                "x-dead-letter-exchange": EXCHANGE,
                "x-dead-letter-routing-key": WORK_ROUTING_KEY,
            }
            for ms in (1000, 2000)
        },
    }
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        for exchange_name in (EXCHANGE, DEAD_LETTER_EXCHANGE, RETRY_EXCHANGE):
            await channel.declare_exchange(exchange_name, passive=True)
        # The broker refuses a declare whose arguments differ from the queue's (the last
        # check shows it): each of these succeeding means the queue holds exactly them.
        for name, arguments in expected_queues.items():
            await channel.declare_queue(name, durable=True, arguments=arguments)
        with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
            await channel.declare_queue(WORK_QUEUE, durable=True)
        # The work queue is bound to the exchange: a mandatory publish is routed to it.
        channel = await connection.channel()
        exchange = await channel.get_exchange(EXCHANGE)
        await exchange.publish(aio_pika.Message(b"probe"), WORK_ROUTING_KEY, mandatory=True)
        queue = await channel.declare_queue(WORK_QUEUE, passive=True)
        assert queue.declaration_result.message_count == 1
    finally:
        await connection.close()


async def test_work_queue_is_quorum_with_delivery_limit(
    amqp_channel: AbstractRobustChannel, topology: Topology
) -> None:
    # A declare with other arguments is refused: the queue really holds these arguments.
    with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
        await amqp_channel.declare_queue(
            WORK_QUEUE,
            durable=True,
            arguments={"x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT + 1},
        )


async def test_mismatch_is_reported_clearly(fresh_amqp_url: str) -> None:
    settings = Settings(amqp_url=fresh_amqp_url)
    connection = await connect(settings)
    try:
        channel = await connection.channel()
        await channel.declare_queue(WORK_QUEUE, durable=True)  # classic, no arguments
        channel = await connection.channel()
        with pytest.raises(TopologyMismatchError, match=WORK_QUEUE):
            await declare_topology(channel, settings)
    finally:
        await connection.close()


async def test_requeued_past_delivery_limit_is_dead_lettered(topology: Topology) -> None:
    await topology.exchange.publish(
        aio_pika.Message(b"poison", message_id="poison-1"), WORK_ROUTING_KEY
    )
    rejections = 0
    while True:
        message = await topology.work_queue.get(no_ack=False, fail=False)
        if message is None:
            dead = await topology.dead_queue.get(no_ack=False, fail=False)
            if dead is not None:
                break
            await asyncio.sleep(0.05)
            continue
        assert message.message_id == "poison-1"
        await message.reject(requeue=True)
        rejections += 1
        assert rejections <= DELIVERY_LIMIT + 1
    assert dead.message_id == "poison-1"
    assert dead.body == b"poison"
    await dead.ack()
    # At most DELIVERY_LIMIT redeliveries after the first delivery.
    assert rejections == DELIVERY_LIMIT + 1


async def test_rejected_without_requeue_goes_to_dead_queue(topology: Topology) -> None:
    await topology.exchange.publish(
        aio_pika.Message(b"permanent", message_id="dead-1"), WORK_ROUTING_KEY
    )
    message = await _get(topology.work_queue)
    await message.reject(requeue=False)
    dead = await _get(topology.dead_queue)
    assert (dead.message_id, dead.body) == ("dead-1", b"permanent")
    assert dead.headers["x-first-death-queue"] == WORK_QUEUE
    await dead.ack()
    assert topology.dead_queue.name == DEAD_QUEUE


@pytest.mark.parametrize("via", ["retry-exchange", "default-exchange"])
async def test_retry_queue_returns_to_work_queue_after_ttl(
    via: str, topology: Topology, amqp_channel: AbstractRobustChannel, amqp_settings: Settings
) -> None:
    queue_name = retry_queue_for(1, amqp_settings)  # 200 ms in the test settings
    exchange = topology.retry_exchange if via == "retry-exchange" else amqp_channel.default_exchange
    assert (exchange.name or "") in ("", RETRY_EXCHANGE)
    started = time.monotonic()
    await exchange.publish(aio_pika.Message(b"later", message_id=f"retry-{via}"), queue_name)
    # It waits in the delay queue first...
    assert await topology.work_queue.get(fail=False) is None
    message = await _get(topology.work_queue)
    elapsed = time.monotonic() - started
    assert message.message_id == f"retry-{via}"
    assert message.routing_key == WORK_ROUTING_KEY
    assert message.exchange == EXCHANGE
    assert elapsed >= 0.15
    await message.ack()
