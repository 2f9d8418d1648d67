"""The outbox relay: PENDING records -> one IssuanceJob each on RabbitMQ, confirmed.

One *window* is one database transaction:

1. ``outbox_claim`` locks up to ``window`` PENDING records (``FOR UPDATE SKIP LOCKED``,
   so several relays share the outbox without waiting on each other), chosen fairly in the
   database: round robin by virtual time across tenants and across each tenant's batches,
   stopping at the in-flight caps (records QUEUED overall, per tenant, per batch) and at the
   tenants' sending rates, and leaving out a tenant's batches whose channel a provider is
   throttling (``credbatch/db/functions/outbox_claim.sql``);
2. their jobs are published with ``ConfirmingPublisher`` (confirms awaited over the whole
   window, a timeout on every publish): consecutive jobs of one batch share a message, up to
   ``bundle`` of them (an ``IssuanceJobs`` body, AMQP type ``JOBS_TYPE``), a job alone in its
   run is a message of its own (an ``IssuanceJob``), so the broker, the relay and the workers
   pay one message for several records;
3. the records the broker confirmed are marked QUEUED (``outbox_mark_queued``);
4. commit.

A crash anywhere before the commit rolls the transaction back, the locks vanish and the
records are PENDING again: the next claim (by this relay after a restart, or by another one)
publishes them again. So a job is delivered at least once; it is delivered twice only when the
relay dies (or the database is lost) between the broker's confirm and the commit, and the
workers are idempotent per record. Records the broker did not confirm stay PENDING.

Work held back by a cap or a rate limit stays PENDING in the database, occupying no broker or
worker slot; while some waits, the relay polls at ``held_back_poll`` instead of backing off. A
full window is followed at once by the next; after a shorter one the relay waits
``held_back_poll`` too, so that the slots workers free meanwhile are claimed in one window.

Due reminders ride in the same windows (``reminder_claim``, after the PENDING records, in
what the window has left): they spend the same tenant token buckets, their jobs carry the
reminder's step, and the rows the broker confirmed are marked published
(``reminder_mark_queued``) in the same transaction. A reminder job published twice the same
way is harmless: the worker's per-step stamps keep it from sending a step twice.

Each job's AMQP headers carry the upload's trace context (the batch's stored
``traceparent``), so the worker's span joins the trace of the upload that created the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind

from credbatch.gen.jobs.v1 import issuance_job_pb2
from credbatch.messaging import (
    EXCHANGE,
    JOBS_TYPE,
    WORK_ROUTING_KEY,
    OutgoingMessage,
    PublishError,
    trace_headers,
)
from credbatch.metrics import RELAY_CONFIRM_DURATION, RELAY_PUBLISHED
from credbatch.telemetry import span_without_data

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

_CLAIM = """
SELECT tenant_id, batch_id, record_id, attempt, traceparent
FROM outbox_claim($1, $2, $3, $4, $5, $6, $7)
"""
_CLAIM_REMINDERS = """
SELECT tenant_id, batch_id, record_id, step, traceparent
FROM reminder_claim($1, $2, $3, $4, $5, $6)
"""
_BACKLOG = "SELECT dispatchable_backlog($1, $2)"
_MARK_QUEUED = "SELECT outbox_mark_queued($1::uuid[], $2::uuid[])"
_MARK_REMINDERS = "SELECT reminder_mark_queued($1::uuid[], $2::uuid[])"


class Publisher(Protocol):
    """What the relay needs from ``credbatch.messaging.ConfirmingPublisher``."""

    async def publish_many(
        self,
        messages: Sequence[OutgoingMessage],
        timeout: float,  # noqa: ASYNC109 - the per-publish confirm timeout
    ) -> None: ...


@dataclass(frozen=True)
class DispatchLimits:
    """What the claim may put in flight; None = no cap, a rate None = unlimited."""

    max_in_flight: int | None = None
    tenant_in_flight: int | None = None
    batch_in_flight: int | None = None
    emails_per_second: float | None = None
    sms_per_second: float | None = None
    # Records per pick of a key: the grain of the round robin.
    quantum: int = 50
    # Seconds after which a published reminder not yet finished is published again.
    reminder_stuck_after: float = 600.0


@dataclass(frozen=True)
class WindowResult:
    """The outcome of one window."""

    claimed: int
    queued: int


@dataclass(frozen=True, slots=True)
class _Claimed:
    tenant_id: uuid.UUID
    batch_id: uuid.UUID
    record_id: uuid.UUID
    attempt: int
    traceparent: str | None
    # A reminder's step of the batch's schedule (attempt then 0); 0 = an invitation.
    reminder_step: int = 0

    @property
    def message_id(self) -> str:
        """The job's message id: the record's id, with the step for a reminder (the broker's
        confirms are matched by it)."""
        if self.reminder_step:
            return f"{self.record_id}:reminder:{self.reminder_step}"
        return str(self.record_id)


class _TraceHeaders:
    """AMQP headers per stored traceparent, built once per batch rather than per record."""

    def __init__(self) -> None:
        self._by_traceparent: dict[str | None, dict[str, Any]] = {}

    def headers(self, traceparent: str | None) -> dict[str, Any]:
        headers = self._by_traceparent.get(traceparent)
        if headers is None:
            headers = {}
            if traceparent:
                context = trace_headers.extract({"traceparent": traceparent})
                trace_headers.inject(headers, context=context)
            self._by_traceparent[traceparent] = headers
        return headers

    def links(self) -> list[Link]:
        links: list[Link] = []
        for traceparent in self._by_traceparent:
            if not traceparent:
                continue
            context = trace_headers.extract({"traceparent": traceparent})
            span_context = trace.get_current_span(context).get_span_context()
            if span_context.is_valid:
                links.append(Link(span_context))
        return links


def _job(claimed: _Claimed) -> issuance_job_pb2.IssuanceJob:
    job = issuance_job_pb2.IssuanceJob(
        tenant_id=str(claimed.tenant_id),
        batch_id=str(claimed.batch_id),
        record_id=str(claimed.record_id),
        # records.attempt counts from 0; a job's attempt from 1.
        attempt=claimed.attempt + 1,
    )
    if claimed.reminder_step:
        job.kind = issuance_job_pb2.JOB_KIND_REMINDER
        job.reminder_step = claimed.reminder_step
    return job


def job_message(claimed: _Claimed, headers: dict[str, Any]) -> OutgoingMessage:
    """The IssuanceJob for one claimed record or reminder (message id: ``_Claimed.message_id``)."""
    return OutgoingMessage(
        routing_key=WORK_ROUTING_KEY,
        body=_job(claimed).SerializeToString(),
        message_id=claimed.message_id,
        headers=headers,
        exchange=EXCHANGE,
    )


def bundle_message(jobs: Sequence[_Claimed], headers: dict[str, Any]) -> OutgoingMessage:
    """One message for ``jobs`` (of one batch): an IssuanceJob alone, else an IssuanceJobs.

    A bundle's message id is its first job's with the number of jobs (``<id>+<n>``): unique
    within a window, as each record is claimed once in it.
    """
    if len(jobs) == 1:
        return job_message(jobs[0], headers)
    body = issuance_job_pb2.IssuanceJobs(jobs=[_job(c) for c in jobs])
    return OutgoingMessage(
        routing_key=WORK_ROUTING_KEY,
        body=body.SerializeToString(),
        message_id=f"{jobs[0].message_id}+{len(jobs)}",
        headers=headers,
        exchange=EXCHANGE,
        type=JOBS_TYPE,
    )


def bundles(claimed: Sequence[_Claimed], size: int) -> list[list[_Claimed]]:
    """The window's jobs cut into messages: runs of one batch's invitations (or its reminders),
    in the claim's order, each cut after ``size`` jobs.

    Only consecutive jobs share a message, so the queue keeps the claim's fair order; a job
    alone in its run (one record of a small batch between others) is a message of its own.
    """
    runs: list[list[_Claimed]] = []
    key: tuple[uuid.UUID, bool] | None = None
    for job in claimed:
        job_key = (job.batch_id, job.reminder_step > 0)
        if job_key != key or len(runs[-1]) >= size:
            runs.append([])
            key = job_key
        runs[-1].append(job)
    return runs


class OutboxRelay:
    """Moves PENDING records to the broker, one confirmed window per transaction."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: Publisher,
        *,
        window: int = 500,
        publish_timeout: float = 10.0,
        poll_interval: float = 0.5,
        min_poll_interval: float = 0.02,
        limits: DispatchLimits | None = None,
        held_back_poll: float = 0.05,
        bundle: int = 1,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        if bundle < 1:
            raise ValueError(f"bundle must be at least 1, got {bundle}")
        self._bundle = bundle
        self._limits = limits or DispatchLimits()
        if self._limits.quantum < 1:
            raise ValueError(f"quantum must be at least 1, got {self._limits.quantum}")
        self._pool = pool
        self._publisher = publisher
        self._window = window
        self._publish_timeout = publish_timeout
        self._poll_interval = poll_interval
        self._min_poll_interval = min(min_poll_interval, poll_interval)
        self._held_back_poll = held_back_poll

    async def relay_window(self) -> WindowResult:
        """Claim, publish, mark and commit one window; returns what it did."""
        async with self._pool.acquire() as conn, conn.transaction():
            limits = self._limits
            rows = await conn.fetch(
                _CLAIM,
                self._window,
                limits.max_in_flight,
                limits.tenant_in_flight,
                limits.batch_in_flight,
                limits.emails_per_second,
                limits.sms_per_second,
                limits.quantum,
            )
            claimed = [_Claimed(*row) for row in rows]
            if len(claimed) < self._window:
                due = await conn.fetch(
                    _CLAIM_REMINDERS,
                    self._window - len(claimed),
                    limits.emails_per_second,
                    limits.sms_per_second,
                    limits.quantum,
                    limits.reminder_stuck_after,
                    # What the outbox claim left of the cap: its own records are not QUEUED
                    # yet, so they are taken off here.
                    None if limits.max_in_flight is None else limits.max_in_flight - len(claimed),
                )
                claimed += [
                    _Claimed(
                        r["tenant_id"],
                        r["batch_id"],
                        r["record_id"],
                        0,
                        r["traceparent"],
                        reminder_step=r["step"],
                    )
                    for r in due
                ]
            if not claimed:
                return WindowResult(0, 0)
            traces = _TraceHeaders()
            runs = bundles(claimed, self._bundle)
            messages = [bundle_message(r, traces.headers(r[0].traceparent)) for r in runs]
            with span_without_data(
                _tracer,
                f"{EXCHANGE} publish",
                kind=SpanKind.PRODUCER,
                links=traces.links(),
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.destination.name": EXCHANGE,
                    "messaging.operation.type": "publish",
                    "messaging.batch.message_count": len(messages),
                    "credbatch.relay.jobs": len(claimed),
                },
            ) as span:
                unconfirmed: frozenset[str] = frozenset()
                started = time.perf_counter()
                try:
                    await self._publisher.publish_many(messages, self._publish_timeout)
                except PublishError as error:
                    # The confirmed part is safely on the broker: record it, leave the rest
                    # PENDING for the next window rather than publishing the whole window twice.
                    unconfirmed = error.unconfirmed_ids
                    span.set_attribute("credbatch.relay.unconfirmed", len(unconfirmed))
                    log.warning(
                        "relay: %d of %d messages not confirmed, their jobs left PENDING (%s)",
                        len(unconfirmed),
                        len(messages),
                        type(error.cause).__name__ if error.cause else "no confirm",
                    )
                RELAY_CONFIRM_DURATION.record(time.perf_counter() - started)
                confirmed = [
                    c
                    for message, run in zip(messages, runs, strict=True)
                    if message.message_id not in unconfirmed
                    for c in run
                ]
                invitations = [c for c in confirmed if not c.reminder_step]
                reminders = [c for c in confirmed if c.reminder_step]
                queued = 0
                if invitations:
                    queued = await conn.fetchval(
                        _MARK_QUEUED,
                        [c.tenant_id for c in invitations],
                        [c.record_id for c in invitations],
                    )
                if reminders:
                    queued += await conn.fetchval(
                        _MARK_REMINDERS,
                        [c.tenant_id for c in reminders],
                        [c.record_id for c in reminders],
                    )
                span.set_attribute("credbatch.relay.queued", queued)
            return WindowResult(len(claimed), queued)

    async def held_back(self) -> bool:
        """Whether PENDING work waits that the caps or rate limits kept out of the last window."""
        async with self._pool.acquire() as conn:
            backlog: int = await conn.fetchval(
                _BACKLOG, self._limits.emails_per_second, self._limits.sms_per_second
            )
        return backlog > 0

    async def _held_back_safely(self) -> bool:
        try:
            return await self.held_back()
        except (asyncpg.PostgresError, OSError, ConnectionError, TimeoutError):
            return False

    async def run(self, stop: asyncio.Event) -> None:
        """Relay windows until ``stop`` is set; the window in progress is finished first.

        Idle polls back off from ``min_poll_interval`` to ``poll_interval``; failures (database
        or broker unreachable) back off up to ten times that, and the loop goes on: records of
        a failed window are still PENDING.
        """
        delay = self._min_poll_interval
        failure_cap = self._poll_interval * 10
        while not stop.is_set():
            try:
                result = await self.relay_window()
            except (asyncpg.PostgresError, OSError, ConnectionError, TimeoutError) as error:
                log.warning("relay: window failed (%s); retrying", type(error).__name__)
                delay = min(max(delay * 2, self._poll_interval), failure_cap)
            except Exception:
                # The broker client raises a family of its own; nothing here may end the relay.
                log.exception("relay: window failed; retrying")
                delay = min(max(delay * 2, self._poll_interval), failure_cap)
            else:
                # Committed by now; adding 0 too keeps the series present while idle.
                RELAY_PUBLISHED.add(result.queued)
                if result.queued:
                    if result.claimed >= self._window:
                        delay = self._min_poll_interval
                        continue  # a full window: more is waiting, straight on
                    # A short window took all that the caps and the backlog allowed. Slots
                    # free up one record at a time as workers finish: taken at once they made
                    # windows of a few dozen records, each paying the claim's fixed cost, so
                    # the next window waits as held-back work does and takes them together.
                    delay = self._held_back_poll
                elif result.claimed:
                    # Claimed but nothing confirmed: the broker is in trouble, do not spin.
                    delay = min(max(delay * 2, self._poll_interval), failure_cap)
                elif await self._held_back_safely():
                    # Slots free up as workers finish and tokens refill: look again soon.
                    delay = self._held_back_poll
                else:
                    delay = min(delay * 2, self._poll_interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
