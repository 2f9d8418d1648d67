"""Settling the work queue's deliveries: consecutive acks in one ``multiple`` frame.

An ack one delivery at a time is a frame, a socket write and a broker operation per job
(about 60 µs of the worker's CPU and 35 of the broker's per message, measured against the
local broker). A ``basic.ack`` with ``multiple`` set acks every unsettled delivery of the
channel up to its tag, so it may only be sent when each of those is settled here. The ledger
keeps the channel's unsettled deliveries in delivery order (a channel's tags only grow): when
the messages a group acks are the oldest unsettled ones, one frame acks them all; what a
group settles ahead of an older group is acked one by one rather than held back.

A tag leaves the ledger only once its frame is written, and frames are sent one settlement at
a time: a ``multiple`` ack never covers a delivery that another group is about to reject or
ack on its own (the broker would close the channel for an unknown delivery tag).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import ChannelInvalidStateError


def _channel_of(message: AbstractIncomingMessage) -> object | None:
    """The channel a message came on, None once it is closed (aio-pika then raises)."""
    try:
        return message.channel
    except ChannelInvalidStateError:
        return None


@dataclass(frozen=True, slots=True)
class Settled:
    """What a settlement sent: frames written, and the messages whose frame failed."""

    frames: int
    failed: dict[str, int]


class DeliveryLedger:
    """The consumer channel's deliveries not settled yet, oldest first.

    Every delivery of the channel must be noted (``received``): a multiple ack covers all the
    channel delivered before it, so the channel serves this consumer alone.
    """

    def __init__(self) -> None:
        self._channel: object | None = None
        self._open: OrderedDict[int, None] = OrderedDict()  # delivery tags, oldest first
        self._sending = asyncio.Lock()

    def received(self, message: AbstractIncomingMessage) -> None:
        """Note a delivery as the consumer receives it."""
        channel = _channel_of(message)
        if channel is None:
            return
        if channel is not self._channel:
            # A reopened channel numbers its deliveries from 1 again; the old channel's are
            # settled by the broker's redelivery, whatever happens to them here.
            self._channel = channel
            self._open.clear()
        tag = message.delivery_tag
        if tag is not None:
            self._open[tag] = None

    def _known(self, message: AbstractIncomingMessage) -> bool:
        return _channel_of(message) is self._channel and message.delivery_tag in self._open

    async def settle(
        self,
        ack: Sequence[AbstractIncomingMessage],
        requeue: Sequence[AbstractIncomingMessage] = (),
        reject: Sequence[AbstractIncomingMessage] = (),
    ) -> Settled:
        """Ack ``ack``, nack ``requeue`` back to the queue, reject ``reject`` (dead letter).

        A frame that cannot be written (the channel died) leaves its messages to the broker,
        which redelivers them; they are counted in ``failed`` by error type.
        """
        failed: dict[str, int] = {}
        frames = 0

        async def send(messages: Sequence[AbstractIncomingMessage], how: str) -> None:
            nonlocal frames
            try:
                if how == "reject":
                    await messages[-1].reject(requeue=False)
                elif how == "requeue":
                    await messages[-1].nack(requeue=True)
                else:
                    await messages[-1].ack(multiple=how == "multiple")
                frames += 1
            except Exception as error:
                name = type(error).__name__
                failed[name] = failed.get(name, 0) + len(messages)
            for message in messages:
                if self._known(message):
                    del self._open[message.delivery_tag]  # type: ignore[arg-type]

        async with self._sending:
            channel = self._channel  # a reconnection meanwhile replaces it
            # Rejects and nacks first: until their frames are written their deliveries stay
            # open, and a multiple ack stops short of them.
            for message in reject:
                await send([message], "reject")
            for message in requeue:
                await send([message], "requeue")
            # The oldest open deliveries, as far as they are all this settlement's acks.
            mine = {m.delivery_tag: m for m in ack if self._known(m)}
            oldest: list[int] = []
            for tag in self._open:
                if tag not in mine:
                    break
                oldest.append(tag)
            if oldest:
                await send([mine[tag] for tag in oldest], "multiple")
            covered = set(oldest)
            for message in ack:
                # Those of an older channel, unknown here, or acked ahead of an older delivery.
                if not (_channel_of(message) is channel and message.delivery_tag in covered):
                    await send([message], "single")
        return Settled(frames, failed)
