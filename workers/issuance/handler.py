"""Issuance of a group of jobs: credential, certificate, invitations, state, then outcomes.

A group is what the consumer received together (up to a few dozen jobs). Per tenant of the
group, in order:

1. one transaction locks the records (id order), skips the cancelled and the finished, signs
   a credential (and renders a certificate) for each record not yet issued, inserts them and
   marks the records ISSUED — ``UNIQUE (tenant_id, record_id)`` on credentials is the final
   guard against two credentials for one record;
2. invitations are sent concurrently for each medium not yet sent (``*_sent_at`` columns make
   a re-send after a crash or retry send only what is missing);
3. one transaction writes every record's outcome (INVITED, FAILED, or still ISSUED with the
   attempt counted), then a short one finishes batches with no work left;
4. only then is each message acked, republished to its delay queue (and acked), or
   dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aio_pika.abc import AbstractIncomingMessage
from google.protobuf.message import DecodeError
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from credbatch.config import Settings
from credbatch.gen.jobs.v1 import issuance_job_pb2
from credbatch.messaging import RETRY_EXCHANGE, ConfirmingPublisher, OutgoingMessage, trace_headers
from credbatch.messaging.topology import WORK_QUEUE, retry_queue_for
from credbatch.signing import opaque, sd_jwt
from credbatch.signing.keys import KeyRing
from credbatch.signing.status_list import StatusAllocator, list_uri
from credbatch.templating.sandbox import TemplateProblem
from credbatch.tenancy import service_scope, tenant_transaction
from workers.issuance import certificates
from workers.issuance import repository as repo
from workers.issuance.context import BatchContext, BatchContextError, ContextCache
from workers.issuance.delivery.email import Envelope, SmtpPool, build_message
from workers.issuance.delivery.sms import SmsClient
from workers.issuance.outcomes import Decision, IssuanceFailure, Outcome, decide, permanent
from workers.issuance.rendering import template_values

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

_SKIP_STATES = frozenset({"INVITED", "FAILED", "CANCELLED", "CLAIMED"})


@dataclass
class Job:
    """One received message and what it asks for (None fields: the body is malformed)."""

    message: AbstractIncomingMessage
    span: Span
    tenant_id: uuid.UUID | None = None
    batch_id: uuid.UUID | None = None
    record_id: uuid.UUID | None = None
    attempt: int = 1
    decision: Decision | None = None


def parse(message: AbstractIncomingMessage) -> Job:
    """Open the job's consumer span (child of the message's trace context) and decode it."""
    span = _tracer.start_span(
        f"{WORK_QUEUE} process",
        context=trace_headers.extract(message.headers),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.operation": "process",
            "messaging.destination.name": WORK_QUEUE,
            "messaging.message.id": message.message_id or "",
        },
    )
    job = Job(message=message, span=span)
    body = issuance_job_pb2.IssuanceJob()
    try:
        body.ParseFromString(message.body)
        tenant_id = uuid.UUID(body.tenant_id)
        batch_id = uuid.UUID(body.batch_id)
        record_id = uuid.UUID(body.record_id)
    except (DecodeError, ValueError):
        span.set_attribute("credbatch.job.malformed", True)
        return job
    job.tenant_id, job.batch_id, job.record_id = tenant_id, batch_id, record_id
    job.attempt = max(body.attempt, 1)
    span.set_attributes(
        {
            "credbatch.tenant_id": str(tenant_id),
            "credbatch.batch_id": str(batch_id),
            "credbatch.record_id": str(record_id),
            "credbatch.attempt": job.attempt,
        }
    )
    return job


@contextmanager
def child_spans(name: str, jobs: Sequence[Job], **attributes: Any) -> Iterator[None]:
    """One span per job for work done for the whole group (e.g. one SQL transaction)."""
    spans = [
        _tracer.start_span(
            name,
            context=trace.set_span_in_context(job.span),
            attributes={**attributes, "credbatch.group_size": len(jobs)},
        )
        for job in jobs
    ]
    try:
        yield
    except BaseException as error:
        for span in spans:
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        raise
    finally:
        for span in spans:
            span.end()


@contextmanager
def child_span(name: str, job: Job, **attributes: Any) -> Iterator[Span]:
    with _tracer.start_as_current_span(
        name,
        context=trace.set_span_in_context(job.span),
        attributes=attributes,
        record_exception=False,
    ) as span:
        yield span


@dataclass
class _Record:
    """A locked record and the jobs (usually one) that asked for it."""

    id: uuid.UUID
    jobs: list[Job]
    context: BatchContext
    email: str | None
    phone: str | None
    attributes: dict[str, Any]
    email_sent: bool
    sms_sent: bool
    claim_url: str = ""
    cred_url: str | None = None
    failure: IssuanceFailure | None = None
    sent: set[str] = field(default_factory=set)

    @property
    def job(self) -> Job:
        return self.jobs[0]

    @property
    def attempt(self) -> int:
        return max(j.attempt for j in self.jobs)


# A batch with at least this many open records, as seen inside the outcome transaction,
# cannot be finished by any commit in flight (workers x prefetch stays far below it).
_NEAR_END = 10_000


class _NothingToDo(Exception):
    """Raised inside the issue transaction to roll it back when nothing was written."""


class IssuanceHandler:
    """Processes groups of jobs; owns no connection (pools and clients are passed in)."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        keys: KeyRing,
        statuses: StatusAllocator,
        publisher: ConfirmingPublisher,
        *,
        smtp: SmtpPool | None,
        sms: SmsClient | None,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._keys = keys
        self._statuses = statuses
        self._publisher = publisher
        self._smtp = smtp
        self._sms = sms
        self._contexts = ContextCache(pool, settings.public_url)
        self._sends = asyncio.Semaphore(settings.worker_concurrency)
        # An issue transaction holds a connection while it loads contexts, keys and status
        # indexes through another one: with every connection held by such a transaction,
        # none could get its second. One connection always stays free for those loads.
        self._issue_slots = asyncio.Semaphore(max(1, pool.get_max_size() - 1))

    async def handle(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        """Process a group of messages and settle every one of them."""
        jobs = [parse(m) for m in messages]
        by_tenant: dict[uuid.UUID, list[Job]] = {}
        for job in jobs:
            if job.tenant_id is None:
                job.decision = Decision(Outcome.DEAD_LETTER)
            else:
                by_tenant.setdefault(job.tenant_id, []).append(job)
        await asyncio.gather(*(self._tenant_group(t, js) for t, js in by_tenant.items()))
        await self._settle(jobs)

    async def _tenant_group(self, tenant_id: uuid.UUID, jobs: list[Job]) -> None:
        try:
            await self._process(tenant_id, jobs)
        except Exception as error:
            # Database or broker trouble, or a bug: nothing was committed for the jobs left
            # undecided, so they go round again through the delay queues (bounded by
            # max_attempts). Only the error type is logged: messages may quote data.
            log.warning(
                "issuance group of %d jobs failed: %s",
                len(jobs),
                type(error).__name__,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            for job in jobs:
                if job.decision is None:
                    job.span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                    job.decision = decide(
                        IssuanceFailure("INTERNAL", "", transient=True),
                        job.attempt,
                        self._settings.max_attempts,
                    )

    async def _process(self, tenant_id: uuid.UUID, jobs: list[Job]) -> None:
        requested: dict[uuid.UUID, list[Job]] = {}
        for job in jobs:
            assert job.record_id is not None
            requested.setdefault(job.record_id, []).append(job)
        scope = service_scope(tenant_id)
        records: list[_Record] = []
        unusable: list[tuple[uuid.UUID, list[Job], BatchContextError, uuid.UUID]] = []
        recheck: set[uuid.UUID] = set()
        with (
            child_spans("db issue", jobs, **{"db.system": "postgresql"}),
            contextlib.suppress(_NothingToDo),
        ):
            async with self._issue_slots, tenant_transaction(self._pool, scope) as conn:
                rows = await conn.fetch(repo.LOCK_RECORDS, tenant_id, list(requested))
                found = {row["id"]: row for row in rows}
                to_issue: list[_Record] = []
                # Batches still QUEUED as the lock saw them: only their first groups mark
                # them IN_PROGRESS (a batch never goes back to QUEUED).
                starting: set[uuid.UUID] = set()
                for record_id, record_jobs in requested.items():
                    row = found.get(record_id)
                    if row is None or any(j.batch_id != row["batch_id"] for j in record_jobs):
                        # Not this tenant's record (RLS hides it), or not in that batch.
                        for j in record_jobs:
                            j.span.set_attribute("credbatch.job.foreign", True)
                            j.decision = Decision(Outcome.DEAD_LETTER)
                        continue
                    if row["state"] in _SKIP_STATES or row["batch_state"] == "CANCELLED":
                        if row["state"] in ("INVITED", "FAILED") and row["batch_state"] in (
                            "QUEUED",
                            "IN_PROGRESS",
                        ):
                            # A redelivery after a crash between the outcome and the batch's
                            # completion: check the batch again.
                            recheck.add(row["batch_id"])
                        for j in record_jobs:
                            j.span.set_attribute("credbatch.record.skipped", row["state"])
                            j.decision = Decision(Outcome.ACK)
                        continue
                    try:
                        context = await self._contexts.get(tenant_id, row["batch_id"])
                    except BatchContextError as error:
                        # The batch itself cannot be issued: every record of it fails.
                        unusable.append((record_id, record_jobs, error, row["batch_id"]))
                        continue
                    if context is None:
                        raise RuntimeError("a locked record's batch could not be loaded")
                    record = _Record(
                        id=record_id,
                        jobs=record_jobs,
                        context=context,
                        email=row["email"],
                        phone=row["phone"],
                        attributes=dict(row["attributes"]),
                        email_sent=row["email_sent"],
                        sms_sent=row["sms_sent"],
                    )
                    records.append(record)
                    if row["state"] in ("PENDING", "QUEUED"):
                        to_issue.append(record)
                        if row["batch_state"] == "QUEUED":
                            starting.add(row["batch_id"])
                if not records and not unusable:
                    # Only foreign, skipped or finished jobs: roll back, so that not even the
                    # tenant row a forged job's tenant id would provision is written.
                    raise _NothingToDo
                if starting:
                    await conn.execute(repo.BATCHES_IN_PROGRESS, tenant_id, list(starting))
                known: dict[uuid.UUID, repo.NewCredential] = {}
                if to_issue:
                    key = await self._keys.active_key(tenant_id)
                    issued = await self._issue(tenant_id, key.kid, key.private_key, to_issue)
                    stored = await repo.insert_issued(
                        conn, tenant_id, key.kid, issued, self._settings.claim_ttl
                    )
                    known = {c.record_id: c for c in issued if c.record_id in stored}
                failed = [r for r in to_issue if r.failure is not None]
                if failed:
                    await conn.execute(
                        repo.MARK_FAILED_UNISSUED,
                        tenant_id,
                        [r.id for r in failed],
                        [r.attempt for r in failed],
                        [r.failure.code for r in failed if r.failure],
                        [r.failure.message for r in failed if r.failure],
                    )
                if unusable:
                    await conn.execute(
                        repo.MARK_FAILED_UNISSUED,
                        tenant_id,
                        [u[0] for u in unusable],
                        [max(j.attempt for j in u[1]) for u in unusable],
                        [u[2].code for u in unusable],
                        [u[2].message for u in unusable],
                    )
                deliverable = [r for r in records if r.failure is None]
                # Links of credentials stored just now are known; only records issued
                # before (redeliveries, retries) need theirs read back.
                unknown = [r.id for r in deliverable if r.id not in known]
                links = await conn.fetch(repo.DELIVERY_LINKS, tenant_id, unknown) if unknown else []
        if not records:
            await self._finish(tenant_id, records, recheck | {u[3] for u in unusable})
            for _, unusable_jobs, _, _ in unusable:
                for job in unusable_jobs:
                    job.decision = Decision(Outcome.ACK)
            return
        public = self._settings.public_url
        by_record: dict[uuid.UUID, tuple[str, str | None]] = {
            row["record_id"]: (row["claim_token"], row["certificate_id"]) for row in links
        }
        by_record.update(
            (c.record_id, (c.claim_token, c.certificate_id if c.pdf is not None else None))
            for c in known.values()
        )
        for record in deliverable:
            link = by_record.get(record.id)
            if link is None:
                raise RuntimeError("an issued record has no credential")
            claim_token, certificate_id = link
            record.claim_url = f"{public}/claim/{claim_token}"
            if certificate_id is not None:
                record.cred_url = certificates.cred_url(public, certificate_id)
        await asyncio.gather(*(self._deliver(r) for r in deliverable))
        await self._finish(tenant_id, records, recheck | {u[3] for u in unusable})
        for _, unusable_jobs, _, _ in unusable:
            for job in unusable_jobs:
                job.decision = Decision(Outcome.ACK)

    async def _issue(
        self, tenant_id: uuid.UUID, kid: str, private_key: Any, records: list[_Record]
    ) -> list[repo.NewCredential]:
        if not records:
            return []
        entries = await self._statuses.take(tenant_id, len(records))
        now = int(time.time())
        public = self._settings.public_url
        issued: list[repo.NewCredential] = []
        for record, entry in zip(records, entries, strict=True):
            context = record.context
            claim_token = opaque.new_id(tenant_id)
            certificate_id = (
                certificates.new_certificate_id(tenant_id) if context.certificate else None
            )
            cred_url = certificates.cred_url(public, certificate_id) if certificate_id else None
            claims: dict[str, Any] = {
                "iss": context.issuer,
                "vct": context.vct,
                "iat": now,
                "status": {
                    "status_list": {
                        "idx": entry.index,
                        "uri": list_uri(public, tenant_id, entry.list_id),
                    }
                },
            }
            expires_at = None
            if context.validity_seconds:
                claims["exp"] = now + context.validity_seconds
                expires_at = datetime.fromtimestamp(now, UTC) + timedelta(
                    seconds=context.validity_seconds
                )
            if cred_url:
                claims["Cred_URL"] = cred_url
            disclosable = {
                name: record.attributes[name]
                for name in context.attribute_names
                if record.attributes.get(name) is not None
            }
            pdf = None
            if context.certificate is not None and cred_url is not None:
                with child_span("render certificate", record.job):
                    try:
                        pdf = context.certificate.render(
                            self._values(record, f"{public}/claim/{claim_token}", cred_url),
                            cred_url,
                        )
                    except TemplateProblem as problem:  # the batch's template, not our fault
                        record.failure = permanent(problem.code, str(problem))
                        continue
            with child_span("sign credential", record.job, **{"credbatch.kid": kid}):
                token = sd_jwt.issue(
                    key=private_key, kid=kid, claims=claims, disclosable=disclosable
                )
            issued.append(
                repo.NewCredential(
                    id=uuid.uuid4(),
                    record_id=record.id,
                    batch_id=context.batch_id,
                    list_id=entry.list_id,
                    index=entry.index,
                    sd_jwt=token,
                    claim_token=claim_token,
                    expires_at=expires_at,
                    attempt=record.attempt,
                    certificate_id=certificate_id,
                    pdf=pdf,
                )
            )
        return issued

    def _values(self, record: _Record, claim_url: str, cred_url: str | None) -> dict[str, str]:
        return template_values(
            record.context.schema,
            record.attributes,
            email=record.email,
            phone=record.phone,
            claim_url=claim_url,
            cred_url=cred_url,
            issuer_name=record.context.schema.display_name,
        )

    async def _deliver(self, record: _Record) -> None:
        context = record.context
        values = self._values(record, record.claim_url, record.cred_url)
        sends = []
        if "EMAIL" in context.mediums and not record.email_sent:
            sends.append(self._send_email(record, values))
        if "SMS" in context.mediums and not record.sms_sent:
            sends.append(self._send_sms(record, values))
        results = await asyncio.gather(*sends, return_exceptions=True)
        failures = [r for r in results if isinstance(r, IssuanceFailure)]
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, IssuanceFailure):
                raise result
        # A permanent failure outweighs a transient one: retrying cannot make it succeed.
        permanent_failures = [f for f in failures if not f.transient]
        chosen = permanent_failures or failures
        record.failure = chosen[0] if chosen else None

    async def _send_email(self, record: _Record, values: dict[str, str]) -> None:
        context = record.context
        if self._smtp is None or context.email is None or not record.email:
            raise permanent("EMAIL_UNAVAILABLE", "the record has no email address or template")
        job = record.job
        with child_span("render email", job):
            try:
                subject, html, text = context.email.render(values)
            except TemplateProblem as problem:
                raise permanent(problem.code, str(problem)) from None
            message = Envelope(
                self._settings.smtp_from,
                record.email,
                build_message(
                    sender=self._settings.smtp_from,
                    recipient=record.email,
                    subject=subject,
                    text=text,
                    html=html,
                ),
            )
        async with self._sends:
            with child_span("smtp send", job, **{"network.peer.port": self._settings.smtp_port}):
                await self._smtp.send(message)
        record.sent.add("EMAIL")

    async def _send_sms(self, record: _Record, values: dict[str, str]) -> None:
        context = record.context
        if self._sms is None or context.sms is None or not record.phone:
            raise permanent("SMS_UNAVAILABLE", "the record has no phone number or template")
        job = record.job
        with child_span("render sms", job):
            try:
                body = context.sms.render(values)
            except TemplateProblem as problem:
                raise permanent(problem.code, str(problem)) from None
        async with self._sends:
            with child_span("sms send", job):
                await self._sms.send(record.phone, body)
        record.sent.add("SMS")

    async def _finish(
        self, tenant_id: uuid.UUID, records: list[_Record], finished_batches: set[uuid.UUID]
    ) -> None:
        outcomes: list[repo.RecordOutcome] = []
        decisions: list[tuple[_Record, Decision]] = []
        for record in records:
            failure = record.failure
            decision = decide(failure, record.attempt, self._settings.max_attempts)
            if failure is None:
                state: str | None = "INVITED"
            elif decision.outcome is Outcome.RETRY:
                state = None
            else:
                state = "FAILED"
            if state is not None:
                finished_batches.add(record.context.batch_id)
            outcomes.append(
                repo.RecordOutcome(
                    record_id=record.id,
                    state=state,
                    email_sent="EMAIL" in record.sent,
                    sms_sent="SMS" in record.sent,
                    code=failure.code if failure else None,
                    message=failure.message if failure else None,
                    attempt=record.attempt,
                )
            )
            decisions.append((record, decision))
        scope = service_scope(tenant_id)
        with_records = [j for r in records for j in r.jobs]
        with child_spans("db outcome", with_records, **{"db.system": "postgresql"}):
            if outcomes:
                async with tenant_transaction(self._pool, scope) as conn:
                    await repo.write_outcomes(conn, tenant_id, outcomes)
                    if finished_batches:
                        # Records other workers hold uncommitted still look unfinished here;
                        # they are at most the prefetched jobs of every worker, so only a
                        # batch with fewer open records than the bound can be done now.
                        rows = await conn.fetch(
                            repo.REMAINING, tenant_id, list(finished_batches), _NEAR_END
                        )
                        finished_batches = {r["id"] for r in rows if r["remaining"] < _NEAR_END}
            if finished_batches:
                async with tenant_transaction(self._pool, scope) as conn:
                    await conn.execute(repo.COMPLETE_BATCHES, tenant_id, list(finished_batches))
        # Decisions only now: a job is never acked before its record's outcome committed.
        for record, decision in decisions:
            for job in record.jobs:
                job.decision = decision
                if record.failure is not None:
                    job.span.set_attribute("credbatch.error_code", record.failure.code)

    async def _settle(self, jobs: list[Job]) -> None:
        """Ack, retry or dead-letter every message; records are committed by now."""
        retries = [j for j in jobs if j.decision and j.decision.outcome is Outcome.RETRY]
        retry_ok = True
        if retries:
            try:
                await self._publisher.publish_many(
                    [self._retry_message(j) for j in retries],
                    timeout=self._settings.relay_publish_timeout,
                )
            except Exception as error:
                # Not republished: leave them to the broker (requeue) rather than lose them.
                log.warning(
                    "republishing %d retries failed: %s", len(retries), type(error).__name__
                )
                retry_ok = False
        for job in jobs:
            decision = job.decision or Decision(Outcome.ACK)
            job.span.set_attribute("credbatch.outcome", decision.outcome.value)
            try:
                if decision.outcome is Outcome.DEAD_LETTER:
                    await job.message.reject(requeue=False)
                elif decision.outcome is Outcome.RETRY and not retry_ok:
                    await job.message.nack(requeue=True)
                else:
                    await job.message.ack()
            except Exception as error:
                # The channel died: the broker redelivers the message; handling is idempotent.
                log.warning("settling a message failed: %s", type(error).__name__)
            finally:
                job.span.end()

    def _retry_message(self, job: Job) -> OutgoingMessage:
        assert job.decision is not None and job.tenant_id and job.batch_id and job.record_id
        body = issuance_job_pb2.IssuanceJob(
            tenant_id=str(job.tenant_id),
            batch_id=str(job.batch_id),
            record_id=str(job.record_id),
            attempt=job.decision.next_attempt,
        )
        headers = {
            k: v for k, v in (job.message.headers or {}).items() if isinstance(v, str | bytes)
        }
        return OutgoingMessage(
            routing_key=retry_queue_for(job.attempt, self._settings),
            body=body.SerializeToString(),
            message_id=f"{job.record_id}:{job.decision.next_attempt}",
            headers=headers,
            exchange=RETRY_EXCHANGE,
        )
