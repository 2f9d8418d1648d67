"""RabbitMQ topology for issuance jobs, declared idempotently by every process that uses it.

Layout (all durable)::

    credbatch.issuance (direct) --"issue"--> credbatch.issuance.jobs (quorum)
        | reject(requeue=False), or more than DELIVERY_LIMIT deliveries
        v
    credbatch.issuance.dlx (direct) --"dead"--> credbatch.issuance.dead (quorum)
        | consumed by every relay: the job's record is FAILED DEAD_LETTERED; a body that
        | names no record is republished, through the default exchange, to
        v
    credbatch.issuance.parked (quorum, x-message-ttl=PARKED_TTL_MS, x-max-length=PARKED_MAX)
        kept for inspection, consumed by nobody

    credbatch.issuance.retry (direct) --"credbatch.issuance.retry.<ms>"-->
        credbatch.issuance.retry.<ms> (classic, x-message-ttl=<ms>)
        -- expiry dead-letters to credbatch.issuance / "issue" --> back to the work queue

Decisions:

* The work queue is a quorum queue with ``x-dead-letter-strategy: at-least-once``, so a
  message is only removed from it once the dead-letter queue has confirmed it. That strategy
  requires ``x-overflow: reject-publish`` (RabbitMQ 3.10+); no length limit is set, so the
  overflow mode only matters if an operator adds one by policy, and then publishers get nacks
  (which ``ConfirmingPublisher`` surfaces) instead of silent drops.
* ``x-delivery-limit`` is a fixed ``DELIVERY_LIMIT``, not ``settings.max_attempts``. The
  application counts attempts itself (the job's ``attempt`` field and the delay queues); the
  broker limit only guards against poison messages that crash workers. On RabbitMQ 3.10 every
  return to the queue counts as a delivery, including prefetched messages handed back when a
  worker stops or scales down, so a small limit would dead-letter jobs that were never tried.
  A fixed value also means changing ``CREDBATCH_MAX_ATTEMPTS`` never changes a queue argument
  (RabbitMQ refuses a redeclare with different arguments: ``TopologyMismatchError``).
* Delay queues are classic durable queues: per-queue message TTL plus dead-lettering is the
  long-proven path there, and one queue per delay keeps expiry FIFO (TTL only expires at the
  head). Their names carry the delay in milliseconds, so changing ``retry_delays`` declares new
  queues rather than conflicting with old ones. Classic dead-lettering is at-most-once; this
  only loses a message if the work queue refuses it (a length limit added by an operator).
* The parking queue keeps what no one could act on (a body that is no job, a job naming no
  record) for an operator to read. Nothing consumes it, so it is bounded: a message expires
  after ``PARKED_TTL_MS`` (14 days: two weekly on-call hand-overs to look) and the queue holds
  at most ``PARKED_MAX_LENGTH`` messages or ``PARKED_MAX_BYTES``, dropping the oldest first
  (``drop-head``): the newest evidence is the most useful, and a flood of garbage must not
  fill the broker's disk. It has no dead-letter exchange, so what it drops is gone. A quorum
  queue, like the dead queue, so the evidence survives the loss of a broker node.
* A job can be sent to a delay queue either through ``RETRY_EXCHANGE`` or the default exchange
  (``""``), in both cases with the delay queue's name as routing key.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aio_pika
import aiormq.exceptions
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractQueue,
    AbstractRobustConnection,
    ExchangeType,
)

from credbatch.config import Settings

EXCHANGE = "credbatch.issuance"
WORK_QUEUE = "credbatch.issuance.jobs"
WORK_ROUTING_KEY = "issue"
DEAD_LETTER_EXCHANGE = "credbatch.issuance.dlx"
DEAD_QUEUE = "credbatch.issuance.dead"
DEAD_ROUTING_KEY = "dead"
# Why a worker dead-lettered one job of a message of several by publishing it (the broker's
# ``x-first-death-reason`` is written only when the broker dead-letters a whole message).
DEAD_REASON_HEADER = "x-credbatch-death-reason"
PARKED_QUEUE = "credbatch.issuance.parked"
PARKED_TTL_MS = 14 * 24 * 3600 * 1000
"""How long a parked message is kept (14 days)."""
PARKED_MAX_LENGTH = 100_000
"""Messages the parking queue holds at most; the oldest are dropped beyond."""
PARKED_MAX_BYTES = 256 * 1024 * 1024
"""Bytes of bodies the parking queue holds at most; the oldest are dropped beyond."""
RETRY_EXCHANGE = "credbatch.issuance.retry"
RETRY_QUEUE_PREFIX = "credbatch.issuance.retry."
DELIVERY_LIMIT = 20
"""Broker-side redelivery limit of the work queue (see the module docstring)."""

# Concurrent first declarations of the same quorum queue from several processes can race
# inside the broker; these are worth a retry, a PRECONDITION_FAILED never is.
_DECLARE_ATTEMPTS = 5

_T = TypeVar("_T")


class TopologyMismatchError(RuntimeError):
    """The broker holds an entity with the same name but different arguments."""


@dataclass(frozen=True)
class Topology:
    """The declared entities, bound to the channel that declared them."""

    exchange: AbstractExchange
    dead_letter_exchange: AbstractExchange
    retry_exchange: AbstractExchange
    work_queue: AbstractQueue
    dead_queue: AbstractQueue
    parked_queue: AbstractQueue
    retry_queues: Mapping[str, AbstractQueue]


def delay_ms(seconds: float) -> int:
    """A delay in whole milliseconds (at least 1), as used in queue names and TTLs."""
    return max(1, math.ceil(seconds * 1000 - 1e-9))


def retry_queue_names(settings: Settings) -> tuple[str, ...]:
    """Names of the delay queues, one per entry of ``settings.retry_delays`` (deduplicated)."""
    names = (f"{RETRY_QUEUE_PREFIX}{delay_ms(d)}" for d in settings.retry_delays)
    return tuple(dict.fromkeys(names))


def retry_queue_for(attempt: int, settings: Settings) -> str:
    """The delay queue for a job that has failed ``attempt`` times (1-based).

    Attempt 1 waits the first delay, attempt 2 the second, and so on, capped at the last.

    Raises:
        ValueError: ``attempt`` is below 1.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be at least 1, got {attempt}")
    delays = settings.retry_delays
    seconds = delays[min(attempt, len(delays)) - 1]
    return f"{RETRY_QUEUE_PREFIX}{delay_ms(seconds)}"


def work_queue_arguments() -> dict[str, Any]:
    """Arguments of the work queue; every declarer must use exactly these."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": DEAD_ROUTING_KEY,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def parked_queue_arguments() -> dict[str, Any]:
    """Arguments of the parking queue: bounded in age, count and size (module docstring)."""
    return {
        "x-queue-type": "quorum",
        "x-message-ttl": PARKED_TTL_MS,
        "x-max-length": PARKED_MAX_LENGTH,
        "x-max-length-bytes": PARKED_MAX_BYTES,
        "x-overflow": "drop-head",
    }


def retry_queue_arguments(ttl_ms: int) -> dict[str, Any]:
    """Arguments of one delay queue: expire after ``ttl_ms`` back into the work exchange."""
    return {
        "x-message-ttl": ttl_ms,
        "x-dead-letter-exchange": EXCHANGE,
        "x-dead-letter-routing-key": WORK_ROUTING_KEY,
    }


async def connect(settings: Settings, *, name: str | None = None) -> AbstractRobustConnection:
    """Open a robust (auto-reconnecting) connection to ``settings.amqp_url``.

    Args:
        settings: the process settings.
        name: shown as the connection name in ``rabbitmqctl list_connections``.
    """
    properties: dict[str, Any] = {"connection_name": name} if name else {}
    return await aio_pika.connect_robust(settings.amqp_url, client_properties=properties)


async def _declare_queue(
    channel: AbstractChannel, name: str, arguments: dict[str, Any]
) -> AbstractQueue:
    return await channel.declare_queue(name, durable=True, arguments=arguments)


async def _with_retry(what: str, declare: Callable[[], Awaitable[_T]]) -> _T:
    for attempt in range(1, _DECLARE_ATTEMPTS + 1):
        try:
            return await declare()
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            raise TopologyMismatchError(
                f"{what} exists with different arguments ({exc}); delete it or align the "
                "declaration"
            ) from exc
        except (
            aiormq.exceptions.ChannelAccessRefused,
            aiormq.exceptions.ChannelNotFoundEntity,
        ):
            raise
        except aiormq.exceptions.ChannelClosed:
            # e.g. a concurrent first declaration of the same quorum queue (INTERNAL_ERROR or
            # RESOURCE_LOCKED); the robust channel reopens itself.
            if attempt == _DECLARE_ATTEMPTS:
                raise
            await asyncio.sleep(0.1 * attempt)
    raise AssertionError("unreachable")


async def declare_topology(channel: AbstractChannel, settings: Settings) -> Topology:
    """Declare every exchange, queue and binding; idempotent and safe to run concurrently.

    Raises:
        TopologyMismatchError: an entity exists with other arguments (the broker closed the
            channel; a robust channel reopens it).
    """
    exchange = await _with_retry(
        f"exchange {EXCHANGE}",
        lambda: channel.declare_exchange(EXCHANGE, ExchangeType.DIRECT, durable=True),
    )
    dlx = await _with_retry(
        f"exchange {DEAD_LETTER_EXCHANGE}",
        lambda: channel.declare_exchange(DEAD_LETTER_EXCHANGE, ExchangeType.DIRECT, durable=True),
    )
    retry_exchange = await _with_retry(
        f"exchange {RETRY_EXCHANGE}",
        lambda: channel.declare_exchange(RETRY_EXCHANGE, ExchangeType.DIRECT, durable=True),
    )
    # The dead queue first, so the work queue never dead-letters into nothing.
    dead_queue = await _with_retry(
        f"queue {DEAD_QUEUE}",
        lambda: _declare_queue(channel, DEAD_QUEUE, {"x-queue-type": "quorum"}),
    )
    await _with_retry(f"binding {DEAD_QUEUE}", lambda: dead_queue.bind(dlx, DEAD_ROUTING_KEY))
    # Reached through the default exchange (routing key = its name): no binding of its own.
    parked_queue = await _with_retry(
        f"queue {PARKED_QUEUE}",
        lambda: _declare_queue(channel, PARKED_QUEUE, parked_queue_arguments()),
    )
    work_queue = await _with_retry(
        f"queue {WORK_QUEUE}",
        lambda: _declare_queue(channel, WORK_QUEUE, work_queue_arguments()),
    )
    await _with_retry(f"binding {WORK_QUEUE}", lambda: work_queue.bind(exchange, WORK_ROUTING_KEY))
    retry_queues: dict[str, AbstractQueue] = {}
    for name in retry_queue_names(settings):
        arguments = retry_queue_arguments(int(name.removeprefix(RETRY_QUEUE_PREFIX)))
        queue = await _with_retry(
            f"queue {name}", functools.partial(_declare_queue, channel, name, arguments)
        )
        await _with_retry(f"binding {name}", functools.partial(queue.bind, retry_exchange, name))
        retry_queues[name] = queue
    return Topology(
        exchange=exchange,
        dead_letter_exchange=dlx,
        retry_exchange=retry_exchange,
        work_queue=work_queue,
        dead_queue=dead_queue,
        parked_queue=parked_queue,
        retry_queues=retry_queues,
    )
