"""Jobs as the worker receives them, and the messages that retry or dead-letter one.

A job names one record (tenant, batch, record) and the attempt it runs at; a reminder job
also the step of its batch's reminder schedule it sends. A message carries one job (an
``IssuanceJob``) or several (an ``IssuanceJobs``, AMQP type ``JOBS_TYPE``). A body that does
not decode, or a job that names no valid ids, is kept as a malformed job: it is dead-lettered,
never dropped, so that someone can see what was sent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from aio_pika.abc import AbstractIncomingMessage
from google.protobuf.message import DecodeError
from opentelemetry.trace import Span

from credbatch.config import Settings
from credbatch.gen.jobs.v1 import issuance_job_pb2
from credbatch.messaging import (
    DEAD_LETTER_EXCHANGE,
    DEAD_REASON_HEADER,
    DEAD_ROUTING_KEY,
    JOBS_TYPE,
    RETRY_EXCHANGE,
    OutgoingMessage,
    trace_headers,
)
from credbatch.messaging.topology import RETRY_QUEUE_PREFIX, delay_ms, retry_queue_for
from workers.issuance.outcomes import Decision, Outcome, Throttle
from workers.issuance.spans import consumer_span


@dataclass(frozen=True)
class Target:
    """The record a job asks to issue, and the batch the job says it belongs to."""

    tenant_id: uuid.UUID
    batch_id: uuid.UUID
    record_id: uuid.UUID
    # The reminder step the job sends (from 1); 0 = the record's invitation.
    reminder_step: int = 0

    @property
    def is_reminder(self) -> bool:
        return self.reminder_step > 0


@dataclass
class Job:
    """One job of a received message, what it asks for, and (once known) what to do with it."""

    message: AbstractIncomingMessage
    span: Span
    target: Target | None  # None: the body is malformed
    attempt: int = 1
    decision: Decision | None = None
    # The job's own body and place, kept when its message carries several (it is then
    # dead-lettered alone).
    body: issuance_job_pb2.IssuanceJob | None = None
    position: int = 0

    @property
    def bundled(self) -> bool:
        """Whether the job's message carries several jobs (settled once all of them are)."""
        return self.message.type == JOBS_TYPE


def parse(message: AbstractIncomingMessage) -> list[Job]:
    """The message's jobs, each with its consumer span open (a child of the message's trace
    context); a message whose body does not decode is one malformed job."""
    if message.type != JOBS_TYPE:
        return [_parse_job(message, consumer_span(message))]
    context = trace_headers.extract(message.headers)
    bundle = issuance_job_pb2.IssuanceJobs()
    try:
        bundle.ParseFromString(message.body)
        if not bundle.jobs:
            raise ValueError("a message of jobs holds none")
    except (DecodeError, ValueError):
        span = consumer_span(message, context)
        span.set_attribute("credbatch.job.malformed", True)
        return [Job(message=message, span=span, target=None)]
    jobs = []
    for position, body in enumerate(bundle.jobs):
        job = _parse_job(message, consumer_span(message, context), body)
        job.position = position
        jobs.append(job)
    return jobs


def _parse_job(
    message: AbstractIncomingMessage,
    span: Span,
    bundled: issuance_job_pb2.IssuanceJob | None = None,
) -> Job:
    """The job of a message of one (``bundled`` None: decoded from the body) or one job of a
    message of several."""
    body = bundled if bundled is not None else issuance_job_pb2.IssuanceJob()
    try:
        if bundled is None:
            body.ParseFromString(message.body)
        reminder = body.kind == issuance_job_pb2.JOB_KIND_REMINDER
        if reminder and body.reminder_step < 1:
            raise ValueError("a reminder job names no step")
        target = Target(
            tenant_id=uuid.UUID(body.tenant_id),
            batch_id=uuid.UUID(body.batch_id),
            record_id=uuid.UUID(body.record_id),
            reminder_step=body.reminder_step if reminder else 0,
        )
    except (DecodeError, ValueError):
        span.set_attribute("credbatch.job.malformed", True)
        return Job(message=message, span=span, target=None, body=bundled)
    job = Job(message=message, span=span, target=target, attempt=max(body.attempt, 1), body=bundled)
    span.set_attributes(
        {
            "credbatch.tenant_id": str(target.tenant_id),
            "credbatch.batch_id": str(target.batch_id),
            "credbatch.record_id": str(target.record_id),
            "credbatch.attempt": job.attempt,
            "credbatch.job.reminder_step": target.reminder_step,
        }
    )
    return job


def throttle_queue(throttle: Throttle, attempt: int, settings: Settings) -> str:
    """The delay queue for a throttled job that ran at ``attempt``.

    The shortest delay queue that waits at least the provider's Retry-After (the longest one
    when none does: the provider is then asked again, and may throttle again at no cost);
    without a Retry-After, the back-off step of the attempt. A per-message expiration would
    wait exactly, but delay queues expire messages only at their head, so a short expiration
    behind a long one would wait for it; one TTL per queue keeps every queue first in, first
    out, and rounding up never retries before the provider asked.
    """
    if throttle.retry_after is None:
        return retry_queue_for(attempt, settings)
    return wait_queue(throttle.retry_after, settings)


def wait_queue(seconds: float, settings: Settings) -> str:
    """The shortest delay queue that waits at least ``seconds`` (the longest when none does)."""
    delays = sorted(set(settings.retry_delays))
    wanted = delay_ms(seconds)
    chosen = next((d for d in delays if delay_ms(d) >= wanted), delays[-1])
    return f"{RETRY_QUEUE_PREFIX}{delay_ms(chosen)}"


def retry_message(job: Job, settings: Settings) -> OutgoingMessage:
    """The job again at its decided next attempt, for the delay queue of the attempt that failed
    (a throttled job: the queue its Retry-After asks for, at the same attempt).

    The trace headers go along, so the retry's span joins the upload's trace.
    """
    if job.target is None or job.decision is None or job.decision.outcome is not Outcome.RETRY:
        raise ValueError("only a well-formed job decided RETRY is retried")
    next_attempt = job.decision.next_attempt
    body = issuance_job_pb2.IssuanceJob(
        tenant_id=str(job.target.tenant_id),
        batch_id=str(job.target.batch_id),
        record_id=str(job.target.record_id),
        attempt=next_attempt,
    )
    if job.target.is_reminder:
        body.kind = issuance_job_pb2.JOB_KIND_REMINDER
        body.reminder_step = job.target.reminder_step
    headers = _passed_on(job)
    throttle = job.decision.throttle
    if throttle is not None:
        queue = throttle_queue(throttle, job.attempt, settings)
    elif job.decision.wait is not None:
        queue = wait_queue(job.decision.wait, settings)
    else:
        queue = retry_queue_for(job.attempt, settings)
    return OutgoingMessage(
        routing_key=queue,
        body=body.SerializeToString(),
        message_id=(
            f"{job.target.record_id}:reminder:{job.target.reminder_step}:{next_attempt}"
            if job.target.is_reminder
            else f"{job.target.record_id}:{next_attempt}"
        ),
        headers=headers,
        exchange=RETRY_EXCHANGE,
    )


def dead_letter_message(job: Job) -> OutgoingMessage:
    """One job of a message of several, decided DEAD_LETTER, as a message of its own for the
    dead-letter queue (its message is acked once this one is confirmed)."""
    if job.body is None:
        raise ValueError("only a job of a message of several is dead-lettered alone")
    headers = {**_passed_on(job), DEAD_REASON_HEADER: "rejected"}
    return OutgoingMessage(
        routing_key=DEAD_ROUTING_KEY,
        body=job.body.SerializeToString(),
        message_id=f"{job.message.message_id or ''}#{job.position}",
        headers=headers,
        exchange=DEAD_LETTER_EXCHANGE,
    )


def _passed_on(job: Job) -> dict[str, str | bytes]:
    """The headers a job's own message takes from the one it came in: its trace context (the
    broker's ``x-death`` tables and such are left behind)."""
    return {k: v for k, v in (job.message.headers or {}).items() if isinstance(v, str | bytes)}
