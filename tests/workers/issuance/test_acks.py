"""DeliveryLedger against the real broker: one frame for consecutive acks, never more acked
than was settled."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
import pytest_asyncio
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from workers.issuance.acks import DeliveryLedger


class Consumer:
    """A consumer on its own channel that notes every delivery in a ledger."""

    def __init__(self, connection: AbstractRobustConnection, queue: str) -> None:
        self.connection = connection
        self.queue = queue
        self.ledger = DeliveryLedger()
        self.received: list[AbstractIncomingMessage] = []
        self.channel: aio_pika.abc.AbstractChannel | None = None

    async def start(self) -> None:
        self.channel = await self.connection.channel()
        await self.channel.set_qos(prefetch_count=100)
        queue = await self.channel.get_queue(self.queue)
        await queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self.ledger.received(message)
        self.received.append(message)

    async def wait_for(self, count: int) -> list[AbstractIncomingMessage]:
        async with asyncio.timeout(10):
            while len(self.received) < count:
                await asyncio.sleep(0.01)
        return self.received

    async def stop(self) -> None:
        """Close the channel: whatever it left unacked goes back to the queue."""
        assert self.channel is not None
        await self.channel.close()


@pytest_asyncio.fixture
async def queues(amqp_connection: AbstractRobustConnection) -> AsyncIterator[tuple[str, str]]:
    """A work queue whose rejected messages go to a dead queue; both deleted afterwards."""
    name = f"acks-{uuid.uuid4().hex[:8]}"
    channel = await amqp_connection.channel()
    dead = await channel.declare_queue(f"{name}-dead")
    await channel.declare_queue(
        name,
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead.name},
    )
    try:
        yield name, dead.name
    finally:
        await channel.queue_delete(name)
        await channel.queue_delete(dead.name)
        await channel.close()


async def publish(connection: AbstractRobustConnection, queue: str, count: int) -> None:
    channel = await connection.channel()
    for i in range(count):
        await channel.default_exchange.publish(aio_pika.Message(f"m{i}".encode()), queue)
    await channel.close()


async def bodies(connection: AbstractRobustConnection, queue: str) -> list[str]:
    """Every message now ready in ``queue``, taken off it, in order."""
    channel = await connection.channel()
    declared = await channel.get_queue(queue)
    found = []
    while (message := await declared.get(fail=False)) is not None:
        found.append(message.body.decode())
        await message.ack()
    await channel.close()
    return found


@pytest_asyncio.fixture
async def consumer(
    amqp_connection: AbstractRobustConnection, queues: tuple[str, str]
) -> AsyncIterator[Consumer]:
    started = Consumer(amqp_connection, queues[0])
    await started.start()
    yield started
    assert started.channel is not None
    if not started.channel.is_closed:
        await started.stop()


async def test_the_oldest_deliveries_are_acked_in_one_frame(
    amqp_connection: AbstractRobustConnection, queues: tuple[str, str], consumer: Consumer
) -> None:
    await publish(amqp_connection, queues[0], 10)
    received = await consumer.wait_for(10)

    first = await consumer.ledger.settle(received[:5])
    second = await consumer.ledger.settle(received[5:])

    assert (first.frames, second.frames) == (1, 1)
    assert first.failed == second.failed == {}
    await consumer.stop()
    assert await bodies(amqp_connection, queues[0]) == []


async def test_a_group_ahead_of_an_older_one_acks_its_own_one_by_one(
    amqp_connection: AbstractRobustConnection, queues: tuple[str, str], consumer: Consumer
) -> None:
    await publish(amqp_connection, queues[0], 10)
    received = await consumer.wait_for(10)

    ahead = await consumer.ledger.settle(received[5:])
    older = await consumer.ledger.settle(received[:5])

    assert (ahead.frames, older.frames) == (5, 1)
    await consumer.stop()
    assert await bodies(amqp_connection, queues[0]) == []


async def test_an_unsettled_delivery_is_never_acked_by_a_later_one(
    amqp_connection: AbstractRobustConnection, queues: tuple[str, str], consumer: Consumer
) -> None:
    await publish(amqp_connection, queues[0], 6)
    received = await consumer.wait_for(6)

    settled = await consumer.ledger.settle(received[1:])

    assert settled.frames == 5
    await consumer.stop()
    assert await bodies(amqp_connection, queues[0]) == ["m0"]  # back in the queue, unacked


async def test_rejects_and_requeues_go_first_and_the_acks_around_them_in_one_frame(
    amqp_connection: AbstractRobustConnection, queues: tuple[str, str], consumer: Consumer
) -> None:
    work, dead = queues
    await publish(amqp_connection, work, 6)
    received = await consumer.wait_for(6)

    settled = await consumer.ledger.settle(
        [received[0], received[1], received[4], received[5]],
        requeue=[received[3]],
        reject=[received[2]],
    )

    # The reject, the nack, one ack for the four others (the redelivery of m3 comes after).
    assert settled.frames == 3
    assert settled.failed == {}
    redelivered = await consumer.wait_for(7)
    assert redelivered[6].body == b"m3"
    assert redelivered[6].redelivered
    assert (await consumer.ledger.settle([redelivered[6]])).frames == 1
    await consumer.stop()
    assert await bodies(amqp_connection, work) == []
    assert await bodies(amqp_connection, dead) == ["m2"]


async def test_groups_settling_at_once_ack_everything_once(
    amqp_connection: AbstractRobustConnection, queues: tuple[str, str], consumer: Consumer
) -> None:
    await publish(amqp_connection, queues[0], 100)
    received = await consumer.wait_for(100)
    groups = [received[i : i + 25] for i in range(0, 100, 25)]

    results = await asyncio.gather(*(consumer.ledger.settle(g) for g in reversed(groups)))

    assert all(r.failed == {} for r in results)
    assert 4 <= sum(r.frames for r in results) <= 100
    # A second ack of any of them would have closed the channel (unknown delivery tag).
    assert consumer.channel is not None and not consumer.channel.is_closed
    await consumer.stop()
    assert await bodies(amqp_connection, queues[0]) == []


async def test_deliveries_of_a_closed_channel_fail_alone_and_the_new_channel_starts_over(
    amqp_connection: AbstractRobustConnection, queues: tuple[str, str], consumer: Consumer
) -> None:
    await publish(amqp_connection, queues[0], 4)
    old = list(await consumer.wait_for(4))
    await consumer.stop()  # the four go back to the queue and come again on a new channel
    consumer.received.clear()
    await consumer.start()
    new = await consumer.wait_for(4)
    assert [m.delivery_tag for m in new] == [m.delivery_tag for m in old]  # numbered again

    stale = await consumer.ledger.settle(old)
    fresh = await consumer.ledger.settle(new)

    assert stale.frames == 0
    assert sum(stale.failed.values()) == 4
    assert (fresh.frames, fresh.failed) == (1, {})
    await consumer.stop()
    assert await bodies(amqp_connection, queues[0]) == []


@pytest.mark.parametrize("count", [1, 3])
async def test_messages_the_ledger_never_saw_are_acked_one_by_one(
    amqp_connection: AbstractRobustConnection, queues: tuple[str, str], count: int
) -> None:
    await publish(amqp_connection, queues[0], count)
    channel = await amqp_connection.channel()
    queue = await channel.get_queue(queues[0])
    taken = [await queue.get() for _ in range(count)]

    settled = await DeliveryLedger().settle(taken)

    assert settled.frames == count
    await channel.close()
    assert await bodies(amqp_connection, queues[0]) == []
