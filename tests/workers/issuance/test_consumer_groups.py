"""How the consumer cuts its buffer into groups: small when shallow, larger when deep."""

from __future__ import annotations

from typing import cast

from aio_pika.abc import AbstractIncomingMessage

from credbatch.config import Settings
from workers.issuance.consumer import IssuanceConsumer
from workers.issuance.handler import IssuanceHandler


def _consumer(prefetch: int) -> IssuanceConsumer:
    # Only the buffer is exercised: no handler is called, no broker is needed.
    settings = Settings().with_overrides(worker_prefetch=prefetch)
    return IssuanceConsumer(settings, cast(IssuanceHandler, None), linger=0.001)


async def _buffer(consumer: IssuanceConsumer, count: int) -> None:
    for n in range(count):
        await consumer._on_message(cast(AbstractIncomingMessage, n))


async def test_a_deep_buffer_is_taken_in_groups_of_half_the_prefetch() -> None:
    consumer = _consumer(100)
    await _buffer(consumer, 120)
    sizes = [len(await consumer._take_group()) for _ in range(3)]
    assert sizes == [50, 50, 20]
    assert consumer.idle


async def test_a_shallow_buffer_keeps_small_groups() -> None:
    consumer = _consumer(100)
    await _buffer(consumer, 25)
    assert len(await consumer._take_group()) == 25
    await _buffer(consumer, 7)
    assert len(await consumer._take_group()) == 7


async def test_messages_are_taken_in_the_order_they_came() -> None:
    consumer = _consumer(8)  # groups of 2, of 4 when deep
    await _buffer(consumer, 7)
    groups = [await consumer._take_group() for _ in range(2)]
    assert [[cast(int, m) for m in group] for group in groups] == [[0, 1, 2, 3], [4, 5, 6]]


async def test_a_prefetch_of_one_takes_one_at_a_time() -> None:
    consumer = _consumer(1)
    await _buffer(consumer, 3)
    assert [len(await consumer._take_group()) for _ in range(3)] == [1, 1, 1]
