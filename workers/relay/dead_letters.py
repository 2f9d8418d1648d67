"""The dead-letter consumer: a job dead-lettered by the broker fails its record.

A job lands in the dead-letter queue when a worker rejects it (a permanent failure the
worker had no outcome transaction for, a malformed or foreign job) or when the broker's
delivery limit is exceeded (a job that kept crashing workers). Its record would otherwise
stay QUEUED or ISSUED for ever. Here the record becomes FAILED with the error code
``DEAD_LETTERED`` (RetryFailedRecords can bring it back), then its batch is completed as the
worker completes batches (``credbatch.batches.lifecycle``, in a transaction of its own after
the record's committed, so the last record to finish sees all the others).

Only a QUEUED or ISSUED record changes: a finished one keeps its outcome, and a PENDING one
is about to be published again (a retry, the sweeper), so the dead job is stale. The batch is
completed whatever changed: a relay that died between the two transactions left the record
FAILED and its batch open, and the redelivered message is the only thing that will close it.

A message of several jobs (``IssuanceJobs``, dead-lettered whole by the broker) is split:
each job is published back to the dead-letter queue as a message of its own (headers as they
came), and the message is acked once all are confirmed; each is then handled as above. A
relay that dies between the confirms and the ack splits it again: every job is handled twice,
which changes nothing the first time did not.

A reminder job (``JOB_KIND_REMINDER``) changes no record: its step is given up (the schedule
moves on to the next step), so a reminder that kept failing is not published again.

A message that maps to no record (a body that is no ``IssuanceJob``, or a job naming a record
its tenant does not have) is republished, body and headers as they came plus an
``x-credbatch-parked-reason`` header, to the parking queue ``credbatch.issuance.parked``
(bounded, see ``credbatch.messaging.topology``) for an operator to read; nothing acts on it.

Every relay runs this consumer: the broker hands each message to one consumer, and it is acked
only after its outcome committed (or its parked copy was confirmed), so a relay that dies
mid-message leaves it to another relay, which finds the same outcome (the change is guarded
by the record's state) and completes the batch if that was still to do. A relay that dies
between a parked copy's confirm and the ack parks that message twice: evidence kept twice, not
lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from google.protobuf.message import DecodeError

from credbatch.batches import reminders as schedules
from credbatch.batches.lifecycle import Failure, complete_batches, fail_records
from credbatch.batches.model import RecordState
from credbatch.config import Settings
from credbatch.gen.jobs.v1 import issuance_job_pb2
from credbatch.messaging import (
    DEAD_QUEUE,
    DEAD_REASON_HEADER,
    JOBS_TYPE,
    PARKED_QUEUE,
    declare_topology,
)
from credbatch.metrics import DEAD_LETTERS
from credbatch.tenancy import service_scope, tenant_transaction

log = logging.getLogger(__name__)

DEAD_LETTERED = "DEAD_LETTERED"
PARKED_REASON_HEADER = "x-credbatch-parked-reason"

# A finished record keeps its outcome; a PENDING one is about to be published again.
_DEAD_FROM = (RecordState.QUEUED, RecordState.ISSUED)

# What the broker writes in x-first-death-reason; anything else is logged as "unknown".
_BROKER_REASONS = frozenset({"rejected", "delivery_limit", "expired", "maxlen"})

# Read-only: a read-only transaction does not provision the tenant, and a dead letter may name
# a tenant that does not exist.
_OUTCOME = "credbatch.dead_letter.outcome"

_RECORD_EXISTS = """
SELECT EXISTS (SELECT 1 FROM records WHERE tenant_id = $1 AND batch_id = $2 AND id = $3)
"""


class Outcome(enum.StrEnum):
    """What a dead letter did to its record."""

    FAILED = "failed"
    """The record was QUEUED or ISSUED and is now FAILED DEAD_LETTERED."""
    STALE = "stale"
    """The record had moved on (finished, or PENDING to be published again): unchanged."""
    UNKNOWN = "unknown"
    """Its tenant has no such record in that batch."""

    REMINDER_GIVEN_UP = "reminder_given_up"
    """A reminder job: its step was given up (or was finished already)."""


async def give_up_reminder(
    pool: asyncpg.Pool,
    tenant_id: uuid.UUID,
    batch_id: uuid.UUID,
    record_id: uuid.UUID,
    step: int,
    day_seconds: float,
) -> Outcome:
    """Finish the step of a dead-lettered reminder job, unless it was finished already."""
    scope = service_scope(tenant_id)
    async with tenant_transaction(pool, scope, readonly=True) as conn:
        exists = await conn.fetchval(_RECORD_EXISTS, tenant_id, batch_id, record_id)
    if not exists:
        return Outcome.UNKNOWN
    async with tenant_transaction(pool, scope) as conn:
        await schedules.finish_steps(conn, tenant_id, [(record_id, step)], day_seconds)
    return Outcome.REMINDER_GIVEN_UP


async def fail_dead_lettered(
    pool: asyncpg.Pool, tenant_id: uuid.UUID, batch_id: uuid.UUID, record_id: uuid.UUID
) -> Outcome:
    """Fail the record of a dead-lettered job and complete its batch."""
    scope = service_scope(tenant_id)
    async with tenant_transaction(pool, scope, readonly=True) as conn:
        exists = await conn.fetchval(_RECORD_EXISTS, tenant_id, batch_id, record_id)
    if not exists:
        return Outcome.UNKNOWN
    failure = Failure(
        record_id, DEAD_LETTERED, "the job was dead-lettered by the broker", batch_id=batch_id
    )
    async with tenant_transaction(pool, scope) as conn:
        changed = await fail_records(conn, tenant_id, [failure], from_states=_DEAD_FROM)
    async with tenant_transaction(pool, scope) as conn:
        await complete_batches(conn, tenant_id, [batch_id])
    return Outcome.FAILED if changed else Outcome.STALE


def death_reason(headers: Mapping[str, object] | None) -> str:
    """The broker's reason for the first dead-lettering (or the worker's, for a job it
    dead-lettered alone out of a message of several), one of a fixed set."""
    headers = headers or {}
    raw = headers.get("x-first-death-reason", headers.get(DEAD_REASON_HEADER))
    reason = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    return reason if reason in _BROKER_REASONS else "unknown"


def parked_copy(message: AbstractIncomingMessage, reason: str) -> aio_pika.Message:
    """The message as it came, for the parking queue, with why it was parked."""
    return _copy(
        message,
        body=message.body,
        headers={**(message.headers or {}), PARKED_REASON_HEADER: reason},
        message_id=message.message_id,
        message_type=message.type,
    )


def single_copy(message: AbstractIncomingMessage, body: bytes, position: int) -> aio_pika.Message:
    """The job at ``position`` of a message of several, as a message of one job (no type)."""
    return _copy(
        message,
        body=body,
        headers=dict(message.headers or {}),
        message_id=f"{message.message_id or ''}#{position}",
        message_type=None,
    )


def _copy(
    message: AbstractIncomingMessage,
    *,
    body: bytes,
    headers: dict[str, Any],
    message_id: str | None,
    message_type: str | None,
) -> aio_pika.Message:
    """A persistent copy of ``message`` with the body, headers, id and type given.

    ``user_id`` is left out (the broker refuses one that is not the publishing connection's
    user) and so is ``expiration`` (the queue it goes to decides how long it is kept).
    """
    return aio_pika.Message(
        body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        priority=message.priority,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        message_id=message_id,
        timestamp=message.timestamp,
        type=message_type,
        app_id=message.app_id,
    )


class DeadLetterConsumer:
    """Consumes ``credbatch.issuance.dead`` on a confirming channel of its own."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        *,
        prefetch: int = 10,
        publish_timeout: float = 10.0,
        retry_pause: float = 1.0,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._prefetch = prefetch
        self._publish_timeout = publish_timeout
        self._retry_pause = retry_pause
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None

    async def start(self, connection: AbstractRobustConnection) -> None:
        # Every outcome's series from 0: increase() sees the first dead letter after a start
        # (a counter that appears at 1 has no earlier sample to rise from).
        for outcome in ("failed", "stale", "malformed", "reminder_given_up"):
            DEAD_LETTERS.add(0, {_OUTCOME: outcome})
        # Confirms: a message is parked when the broker says so, and only then acked here.
        self._channel = await connection.channel(publisher_confirms=True)
        await self._channel.set_qos(prefetch_count=self._prefetch)
        topology = await declare_topology(self._channel, self._settings)
        self._queue = topology.dead_queue
        self._tag = await self._queue.consume(self._on_message)

    async def stop(self) -> None:
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if message.type == JOBS_TYPE:
            await self._split(message)
            return
        job = issuance_job_pb2.IssuanceJob()
        try:
            job.ParseFromString(message.body)
            target = (uuid.UUID(job.tenant_id), uuid.UUID(job.batch_id), uuid.UUID(job.record_id))
        except (DecodeError, ValueError):
            await self._park(message, "malformed")
            return
        try:
            if job.kind == issuance_job_pb2.JOB_KIND_REMINDER:
                outcome = await give_up_reminder(
                    self._pool,
                    *target,
                    job.reminder_step,
                    self._settings.reminder_day_seconds,
                )
            else:
                outcome = await fail_dead_lettered(self._pool, *target)
        except Exception as error:
            # Not committed: handed back to the broker, for this relay or another, after a
            # pause so an unreachable database is not asked in a tight loop.
            log.warning("dead letter not handled (%s); requeued", type(error).__name__)
            await self._requeue(message)
            return
        if outcome is Outcome.UNKNOWN:
            await self._park(message, "unknown_record")
            return
        if outcome is Outcome.FAILED:
            log.warning(
                "record failed DEAD_LETTERED (tenant %s, batch %s, record %s, reason %s)",
                *target,
                death_reason(message.headers),
            )
        await message.ack()
        DEAD_LETTERS.add(1, {_OUTCOME: outcome.value})

    async def _split(self, message: AbstractIncomingMessage) -> None:
        """A message of several jobs back to this queue as one message per job."""
        bundle = issuance_job_pb2.IssuanceJobs()
        try:
            bundle.ParseFromString(message.body)
        except DecodeError:
            await self._park(message, "malformed")
            return
        if not bundle.jobs:
            await self._park(message, "malformed")
            return
        assert self._channel is not None
        exchange = self._channel.default_exchange
        try:
            await asyncio.gather(
                *(
                    exchange.publish(
                        single_copy(message, job.SerializeToString(), position),
                        DEAD_QUEUE,
                        mandatory=True,
                        timeout=self._publish_timeout,
                    )
                    for position, job in enumerate(bundle.jobs)
                )
            )
        except Exception as error:
            log.warning("dead letters not split (%s); requeued", type(error).__name__)
            await self._requeue(message)
            return
        await message.ack()

    async def _park(self, message: AbstractIncomingMessage, reason: str) -> None:
        assert self._channel is not None
        try:
            await self._channel.default_exchange.publish(
                parked_copy(message, reason),
                PARKED_QUEUE,
                mandatory=True,
                timeout=self._publish_timeout,
            )
        except Exception as error:
            # Not confirmed: the dead letter stays in its queue until a copy is kept.
            log.warning("dead letter not parked (%s); requeued", type(error).__name__)
            await self._requeue(message)
            return
        # Both kinds count as "malformed": a body that names no record of this installation.
        DEAD_LETTERS.add(1, {_OUTCOME: "malformed"})
        log.warning(
            "dead letter parked in %s (%s, message id %s)", PARKED_QUEUE, reason, message.message_id
        )
        await message.ack()

    async def _requeue(self, message: AbstractIncomingMessage) -> None:
        await asyncio.sleep(self._retry_pause)
        with contextlib.suppress(Exception):
            await message.nack(requeue=True)
