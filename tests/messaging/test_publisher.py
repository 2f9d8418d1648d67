"""ConfirmingPublisher against the real broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection

from credbatch.messaging.publisher import (
    CONTENT_TYPE,
    ConfirmingPublisher,
    OutgoingMessage,
    PublishError,
)
from credbatch.messaging.topology import WORK_ROUTING_KEY, Topology


def _messages(count: int, **overrides: str) -> list[OutgoingMessage]:
    fields = {"routing_key": WORK_ROUTING_KEY} | overrides
    return [
        OutgoingMessage(
            body=f"job-{i}".encode(),
            message_id=f"m-{i}",
            headers={"x-attempt": 1},
            **fields,
        )
        for i in range(count)
    ]


async def _queue_depth(connection: AbstractRobustConnection, name: str) -> int:
    # A fresh channel: a robust channel answers a repeated declare from its cache.
    channel = await connection.channel()
    try:
        declared = await channel.declare_queue(name, passive=True)
        count = declared.declaration_result.message_count
        assert count is not None
        return count
    finally:
        await channel.close()


async def test_publishes_a_thousand_with_confirms(
    amqp_connection: AbstractRobustConnection,
    amqp_channel: AbstractRobustChannel,
    topology: Topology,
) -> None:
    publisher = ConfirmingPublisher(amqp_channel)
    await publisher.publish_many(_messages(1_000), timeout=30)
    assert await _queue_depth(amqp_connection, topology.work_queue.name) == 1_000

    message = await topology.work_queue.get()
    assert message.content_type == CONTENT_TYPE
    assert message.delivery_mode == 2  # persistent
    assert message.message_id == "m-0"
    assert message.body == b"job-0"
    assert message.headers["x-attempt"] == 1


async def test_empty_window_is_a_no_op(
    amqp_connection: AbstractRobustConnection, topology: Topology
) -> None:
    channel = await amqp_connection.channel()
    publisher = ConfirmingPublisher(channel)
    await channel.close()
    # On a closed channel any publish, or any wait for the channel or a confirm, fails.
    await publisher.publish_many([], timeout=1)
    with pytest.raises(PublishError):
        await publisher.publish_many(_messages(1), timeout=1)
    assert await _queue_depth(amqp_connection, topology.work_queue.name) == 0


async def test_missing_exchange_raises_publish_error(
    amqp_connection: AbstractRobustConnection, topology: Topology
) -> None:
    channel = await amqp_connection.channel()
    publisher = ConfirmingPublisher(channel)
    missing = f"no-such-exchange-{uuid.uuid4().hex}"
    with pytest.raises(PublishError) as caught:
        await publisher.publish_many(_messages(3, exchange=missing), timeout=5)
    assert caught.value.unconfirmed == 3
    assert caught.value.unconfirmed_ids == {"m-0", "m-1", "m-2"}
    assert "3 of 3 messages not confirmed" in str(caught.value)
    assert "NOT_FOUND" in str(caught.value)
    # The robust channel reopens and the same publisher goes on; the connection survives.
    await publisher.publish_many(_messages(3), timeout=5)
    assert not amqp_connection.is_closed
    await channel.close()


async def test_unroutable_message_raises_publish_error(
    amqp_channel: AbstractRobustChannel, topology: Topology
) -> None:
    publisher = ConfirmingPublisher(amqp_channel)
    with pytest.raises(PublishError, match="2 unroutable") as caught:
        await publisher.publish_many(_messages(2, routing_key="nobody-listens"), timeout=5)
    assert caught.value.returned == ("m-0", "m-1")


async def test_nack_raises_publish_error(amqp_channel: AbstractRobustChannel) -> None:
    # A full queue in reject-publish mode makes the broker nack.
    queue = await amqp_channel.declare_queue(
        f"test.full.{uuid.uuid4().hex}",
        auto_delete=True,
        arguments={"x-max-length": 1, "x-overflow": "reject-publish"},
    )
    publisher = ConfirmingPublisher(amqp_channel)
    with pytest.raises(PublishError, match="1 nacked") as caught:
        await publisher.publish_many(_messages(2, routing_key=queue.name, exchange=""), timeout=5)
    assert caught.value.nacked == ("m-1",)
    await queue.delete(if_unused=False, if_empty=False)


async def test_timeout_raises_publish_error(
    amqp_channel: AbstractRobustChannel, topology: Topology
) -> None:
    publisher = ConfirmingPublisher(amqp_channel)
    with pytest.raises(PublishError, match="timed out") as caught:
        await publisher.publish_many(_messages(50), timeout=1e-6)
    assert caught.value.timed_out
    # The channel stays usable afterwards.
    await asyncio.sleep(0.2)
    await publisher.publish_many(_messages(1), timeout=5)


def test_requires_confirming_channel() -> None:
    class Unconfirmed:
        publisher_confirms = False

    with pytest.raises(ValueError, match="publisher_confirms"):
        ConfirmingPublisher(Unconfirmed())  # type: ignore[arg-type]
