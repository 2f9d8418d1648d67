"""Publishing windows of messages with publisher confirms.

Awaiting each message's confirm before publishing the next pays a broker round trip per
message; publishing a window at once and then awaiting all its confirms overlaps those waits.
So callers hand a whole window to ``publish_many``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiormq.exceptions
from aio_pika import DeliveryMode, Message
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustChannel
from aiormq.abc import DeliveredMessage

from credbatch.messaging.topology import EXCHANGE

CONTENT_TYPE = "application/x-protobuf"
# The AMQP ``type`` of a message whose body is an ``IssuanceJobs`` (several jobs); a message
# without a type is one ``IssuanceJob``.
JOBS_TYPE = "credbatch.jobs.v1.IssuanceJobs"


class PublishError(Exception):
    """Some messages of a window were not confirmed by the broker.

    Attributes:
        nacked: message ids the broker nacked or rejected.
        returned: message ids the broker could not route (mandatory publish returned).
        timed_out: message ids without a confirm within the timeout.
        failed: message ids that failed otherwise (channel closed, exchange missing, ...).
        total: how many messages the window held.
    """

    def __init__(
        self,
        *,
        total: int,
        nacked: Sequence[str] = (),
        returned: Sequence[str] = (),
        timed_out: Sequence[str] = (),
        failed: Sequence[str] = (),
        cause: BaseException | None = None,
    ) -> None:
        self.total = total
        self.nacked = tuple(nacked)
        self.returned = tuple(returned)
        self.timed_out = tuple(timed_out)
        self.failed = tuple(failed)
        self.cause = cause
        parts = [
            f"{len(ids)} {label}"
            for label, ids in (
                ("nacked", self.nacked),
                ("unroutable", self.returned),
                ("timed out", self.timed_out),
                ("failed", self.failed),
            )
            if ids
        ]
        message = f"{self.unconfirmed} of {total} messages not confirmed: {', '.join(parts)}"
        if cause is not None:
            message += f" (first error: {type(cause).__name__}: {cause})"
        super().__init__(message)

    @property
    def unconfirmed(self) -> int:
        """How many messages of the window may not have reached a queue."""
        return len(self.nacked) + len(self.returned) + len(self.timed_out) + len(self.failed)

    @property
    def unconfirmed_ids(self) -> frozenset[str]:
        """Message ids to publish again (publishing is at-least-once: duplicates can occur)."""
        return frozenset(self.nacked + self.returned + self.timed_out + self.failed)


@dataclass(frozen=True)
class OutgoingMessage:
    """One message to publish.

    Attributes:
        routing_key: the routing key (for the default exchange: the queue name).
        body: the serialized protobuf.
        message_id: a stable id (e.g. the record id), unique within a window.
        headers: AMQP headers, e.g. the ``traceparent`` from ``trace_headers.inject``.
        exchange: the exchange name; ``""`` is the default exchange.
        type: the AMQP ``type`` property (``JOBS_TYPE`` for several jobs), or None.
    """

    routing_key: str
    body: bytes
    message_id: str
    headers: Mapping[str, Any] = field(default_factory=dict)
    exchange: str = EXCHANGE
    type: str | None = None


class ConfirmingPublisher:
    """Publishes windows of persistent messages and waits for all their confirms.

    The channel must be opened with ``publisher_confirms=True`` (aio-pika's default). Messages
    are published ``mandatory``, so an unroutable message counts as a failure rather than
    vanishing.
    """

    def __init__(self, channel: AbstractChannel) -> None:
        if not getattr(channel, "publisher_confirms", True):
            raise ValueError("ConfirmingPublisher needs a channel with publisher_confirms=True")
        self._channel = channel
        self._exchanges: dict[str, AbstractExchange] = {}

    @property
    def channel(self) -> AbstractChannel:
        return self._channel

    async def _exchange(self, name: str) -> AbstractExchange:
        exchange = self._exchanges.get(name)
        if exchange is None:
            if name == "":
                exchange = self._channel.default_exchange
            else:
                # Check once that the exchange exists. Publishing a window to a missing one
                # makes the broker close the channel while later publishes of the window are
                # still queued for it, and the broker answers those by closing the connection.
                if isinstance(self._channel, AbstractRobustChannel):
                    await self._channel.declare_exchange(name, passive=True, robust=False)
                else:
                    await self._channel.declare_exchange(name, passive=True)
                exchange = await self._channel.get_exchange(name, ensure=False)
            self._exchanges[name] = exchange
        return exchange

    async def _ready(self) -> None:
        # A robust channel reopens itself after a channel error or a reconnection.
        # Right after a channel error, ready() can still report the old state until the close
        # has been processed, so wait until the channel is really open again.
        if isinstance(self._channel, AbstractRobustChannel):
            await self._channel.ready()
            while self._channel.is_closed:
                await asyncio.sleep(0.01)
                await self._channel.ready()

    # The timeout bounds each message's confirm, not the whole call, so a caller's
    # asyncio.timeout() around the call could not express it (hence the ASYNC109 waiver).
    async def publish_many(
        self,
        messages: Sequence[OutgoingMessage],
        timeout: float,  # noqa: ASYNC109
    ) -> None:
        """Publish all ``messages`` concurrently and wait until the broker confirms each.

        Args:
            messages: the window; order of publication follows the sequence.
            timeout: seconds each publish may take, confirm included.

        Raises:
            PublishError: any message was nacked, returned unroutable, timed out or failed;
                the error lists their message ids. The others may have been delivered.
        """
        if not messages:
            return
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        ids = [m.message_id for m in messages]
        try:
            async with asyncio.timeout(timeout):
                await self._ready()
        except TimeoutError as exc:
            raise PublishError(total=len(messages), timed_out=ids, cause=exc) from exc
        exchanges: dict[str, AbstractExchange] = {}
        for name in dict.fromkeys(m.exchange for m in messages):
            try:
                exchanges[name] = await self._exchange(name)
            except (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError) as exc:
                raise PublishError(total=len(messages), failed=ids, cause=exc) from exc
        results = await asyncio.gather(
            *(self._publish_one(exchanges[m.exchange], m, timeout) for m in messages),
            return_exceptions=True,
        )
        nacked: list[str] = []
        returned: list[str] = []
        timed_out: list[str] = []
        failed: list[str] = []
        first_error: BaseException | None = None
        for message, result in zip(messages, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if result is None:
                continue
            if isinstance(result, DeliveredMessage | aiormq.exceptions.PublishError):
                returned.append(message.message_id)
            elif isinstance(result, aiormq.exceptions.DeliveryError):
                nacked.append(message.message_id)
            elif isinstance(result, TimeoutError):
                timed_out.append(message.message_id)
            else:
                failed.append(message.message_id)
            if first_error is None and isinstance(result, BaseException):
                first_error = result
        if nacked or returned or timed_out or failed:
            raise PublishError(
                total=len(messages),
                nacked=nacked,
                returned=returned,
                timed_out=timed_out,
                failed=failed,
                cause=first_error,
            )

    @staticmethod
    async def _publish_one(
        exchange: AbstractExchange, message: OutgoingMessage, confirm_timeout: float
    ) -> DeliveredMessage | None:
        amqp_message = Message(
            message.body,
            content_type=CONTENT_TYPE,
            delivery_mode=DeliveryMode.PERSISTENT,
            message_id=message.message_id,
            headers=dict(message.headers),
            type=message.type,
        )
        result = await exchange.publish(
            amqp_message, message.routing_key, mandatory=True, timeout=confirm_timeout
        )
        # A returned (unroutable) message comes back as the message instead of an Ack frame.
        return result if isinstance(result, DeliveredMessage) else None
