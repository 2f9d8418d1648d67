"""The dead-letter consumer: a job dead-lettered by the broker fails its record.

A job lands in the dead-letter queue when a worker rejects it (a permanent failure the
worker had no outcome transaction for, a malformed or foreign job) or when the broker's
delivery limit is exceeded (a job that kept crashing workers). Its record would otherwise
stay QUEUED or ISSUED for ever. Here the record becomes FAILED with the error code
``DEAD_LETTERED`` (RetryFailedRecords can bring it back), then its batch is completed as the
worker completes batches (``credbatch.batches.lifecycle``, in a transaction of its own after
the record's committed, so the last record to finish sees all the others).

Only a QUEUED or ISSUED record changes: a finished one keeps its outcome, and a PENDING one
is about to be published again (a retry, the sweeper), so the dead job is stale. The message
is acked once that is committed; a message whose body names no record is acked and logged.
"""

from __future__ import annotations

import contextlib
import logging
import uuid

import asyncpg
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from google.protobuf.message import DecodeError

from credbatch.batches.lifecycle import Failure, complete_batches, fail_records
from credbatch.batches.model import RecordState
from credbatch.config import Settings
from credbatch.gen.jobs.v1 import issuance_job_pb2
from credbatch.messaging import declare_topology
from credbatch.metrics import DEAD_LETTERS
from credbatch.tenancy import service_scope, tenant_transaction

log = logging.getLogger(__name__)

DEAD_LETTERED = "DEAD_LETTERED"

# A finished record keeps its outcome; a PENDING one is about to be published again.
_DEAD_FROM = (RecordState.QUEUED, RecordState.ISSUED)


async def fail_dead_lettered(
    pool: asyncpg.Pool, tenant_id: uuid.UUID, batch_id: uuid.UUID, record_id: uuid.UUID
) -> bool:
    """Fail the record of a dead-lettered job and complete its batch; whether it changed."""
    scope = service_scope(tenant_id)
    failure = Failure(
        record_id, DEAD_LETTERED, "the job was dead-lettered by the broker", batch_id=batch_id
    )
    async with tenant_transaction(pool, scope) as conn:
        changed = await fail_records(conn, tenant_id, [failure], from_states=_DEAD_FROM)
    if not changed:
        return False
    async with tenant_transaction(pool, scope) as conn:
        await complete_batches(conn, tenant_id, [batch_id])
    return True


class DeadLetterConsumer:
    """Consumes ``credbatch.issuance.dead`` on a channel of its own, one message at a time."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, *, prefetch: int = 10) -> None:
        self._settings = settings
        self._pool = pool
        self._prefetch = prefetch
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None

    async def start(self, connection: AbstractRobustConnection) -> None:
        # Every outcome's series from 0: increase() sees the first dead letter after a start
        # (a counter that appears at 1 has no earlier sample to rise from).
        for outcome in ("failed", "stale", "malformed"):
            DEAD_LETTERS.add(0, {"credbatch.dead_letter.outcome": outcome})
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        topology = await declare_topology(channel, self._settings)
        self._queue = topology.dead_queue
        self._tag = await self._queue.consume(self._on_message)

    async def stop(self) -> None:
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)
            with contextlib.suppress(Exception):
                await self._queue.channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        job = issuance_job_pb2.IssuanceJob()
        try:
            job.ParseFromString(message.body)
            target = (uuid.UUID(job.tenant_id), uuid.UUID(job.batch_id), uuid.UUID(job.record_id))
        except (DecodeError, ValueError):
            log.warning("dead letter without a valid job (message id %s)", message.message_id)
            await message.ack()
            DEAD_LETTERS.add(1, {"credbatch.dead_letter.outcome": "malformed"})
            return
        try:
            changed = await fail_dead_lettered(self._pool, *target)
        except Exception as error:
            # Not committed: the broker delivers it again (to this consumer after a pause).
            log.warning("dead letter not handled (%s); requeued", type(error).__name__)
            await message.nack(requeue=True)
            return
        if changed:
            log.info("record %s failed: its job was dead-lettered", target[2])
        await message.ack()
        DEAD_LETTERS.add(1, {"credbatch.dead_letter.outcome": "failed" if changed else "stale"})
