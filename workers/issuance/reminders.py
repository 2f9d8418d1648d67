"""Reminders: one step of a batch's reminder schedule for a holder who has not claimed.

A reminder job (``Target.reminder_step`` > 0) names a record and the step of its schedule to
send. It is sent only while the record is INVITED, its claim link has not run out, its batch
is not cancelled and the step is the record's next (``record_reminders.step``); it goes to
the channels of the batch the step was not accepted on before, with the record's current
claim link and offer (the credential is never signed again), rendered from the batch's
reminder templates or the built-in reminder wording. Each channel of the step is taken
(``record_reminders``, committed) before its message is sent, so a job delivered again after
a crash, or to a second worker, sends nothing on a channel taken before: a step reaches a
holder at most once on each channel, and a worker killed between the take and the send loses
that message rather than sending it twice. A channel whose message failed and is to be tried
again is given back. The record's state never changes.

Then the step is finished: the schedule moves on to the next step, due that many days after
the invitation, or ends after the last. A step that fails for good (no address, a bad
template, the provider refused the number), or transiently past the last attempt, is given up:
a reminder is a courtesy, and the next step may still reach the holder. A transient failure
within the attempts is retried through the delay queues like an invitation; a provider's
throttle also holds the tenant's dispatch on that channel back, as an invitation's does.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from credbatch.batches import reminders as schedules
from credbatch.catalog import repository as catalog
from credbatch.catalog.checks import SMS_LIMITS
from credbatch.catalog.defaults import (
    REMINDER_EMAIL_HTML,
    REMINDER_EMAIL_SUBJECT,
    REMINDER_EMAIL_TEXT,
    REMINDER_SMS_BODY,
    REMINDER_TEMPLATE_NAME,
)
from credbatch.catalog.model import EmailTemplate as StoredEmailTemplate
from credbatch.config import Settings
from credbatch.errors import CredbatchError
from credbatch.metrics import REMINDERS_SENT
from credbatch.schema.model import Medium
from credbatch.templating.sandbox import CompiledTemplate, TemplateProblem
from credbatch.tenancy import service_scope, tenant_transaction
from workers.issuance.context import BatchContext, BatchContextError, ContextCache
from workers.issuance.credential import Holder, links_for
from workers.issuance.invitations import Invitation, Inviter
from workers.issuance.job import Job
from workers.issuance.outcomes import Decision, Outcome, Throttle, decide
from workers.issuance.rendering import EmailTemplate
from workers.issuance.throttle import hold_dispatch

# What a reminder needs of each record, read without a lock: the stamps, not a lock, keep a
# step from going out twice (a lock held across the sends would block their own stamps).
READ = """
SELECT r.id, r.batch_id, r.state, r.email, r.phone, r.attributes, r.purged_at IS NOT NULL AS purged,
       m.step, m.email_step, m.sms_step,
       b.state = 'CANCELLED' AS cancelled,
       c.claim_token, c.claim_expires_at IS NULL OR c.claim_expires_at > now() AS link_open,
       ce.id AS certificate_id,
       (SELECT coalesce(max(s.generation) + 1, 0) FROM oid4vci_superseded_offers s
        WHERE s.tenant_id = r.tenant_id AND s.record_id = r.id) AS offer_generation
FROM records r
JOIN record_reminders m ON m.tenant_id = r.tenant_id AND m.record_id = r.id
JOIN batches b ON b.tenant_id = r.tenant_id AND b.id = r.batch_id
LEFT JOIN credentials c ON c.tenant_id = r.tenant_id AND c.record_id = r.id
LEFT JOIN certificates ce ON ce.tenant_id = r.tenant_id AND ce.record_id = r.id
WHERE r.tenant_id = $1 AND r.id = ANY($2::uuid[])
"""

_BATCH_TEMPLATES = """
SELECT reminder_email_template_id, reminder_sms_template_id FROM batches
WHERE tenant_id = $1 AND id = $2
"""

_DEFAULT_EMAIL = StoredEmailTemplate(
    id=uuid.UUID(int=0),
    display_name=REMINDER_TEMPLATE_NAME,
    subject=REMINDER_EMAIL_SUBJECT,
    html_body=REMINDER_EMAIL_HTML,
    text_body=REMINDER_EMAIL_TEXT,
)


@dataclass(frozen=True)
class _Row:
    id: uuid.UUID
    batch_id: uuid.UUID
    open: bool  # INVITED, link not run out, batch not cancelled
    step: int
    email_step: int
    sms_step: int
    holder: Holder
    claim_token: str | None
    certificate_id: str | None
    offer_generation: int


class ReminderTemplates:
    """The compiled reminder templates of each batch, loaded once per batch per process."""

    def __init__(self, pool: asyncpg.Pool, capacity: int = 64) -> None:
        self._pool = pool
        self._capacity = capacity
        self._items: dict[tuple[uuid.UUID, uuid.UUID], BatchContext] = {}

    async def context(self, base: BatchContext) -> BatchContext:
        """``base`` (the batch's invitation context) with its reminder templates instead."""
        key = (base.tenant_id, base.batch_id)
        found = self._items.get(key)
        if found is not None:
            return found
        async with tenant_transaction(
            self._pool, service_scope(base.tenant_id), readonly=True
        ) as conn:
            row = await conn.fetchrow(_BATCH_TEMPLATES, base.tenant_id, base.batch_id)
            email_id = row["reminder_email_template_id"] if row else None
            sms_id = row["reminder_sms_template_id"] if row else None
            email = sms = None
            if Medium.EMAIL in base.mediums:
                stored = (
                    await catalog.get_email_template(conn, email_id)
                    if email_id is not None
                    else _DEFAULT_EMAIL
                )
                email = EmailTemplate.compile(stored)
            if Medium.SMS in base.mediums:
                body = (
                    (await catalog.get_sms_template(conn, sms_id)).body
                    if sms_id is not None
                    else REMINDER_SMS_BODY
                )
                sms = CompiledTemplate(body, limits=SMS_LIMITS)
        context = dataclasses.replace(base, email=email, sms=sms)
        if len(self._items) >= self._capacity:
            self._items.pop(next(iter(self._items)))
        self._items[key] = context
        return context


class Reminders:
    """Sends the reminder steps of a tenant's reminder jobs and finishes them."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        contexts: ContextCache,
        inviter: Inviter,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._contexts = contexts
        self._templates = ReminderTemplates(pool)
        self._inviter = inviter
        # Both channels' series from 0, so increase() sees a worker's first reminder.
        for channel in ("email", "sms"):
            REMINDERS_SENT.add(0, {"credbatch.reminder.channel": channel})

    async def process(self, tenant_id: uuid.UUID, jobs: Sequence[Job]) -> None:
        """Send and finish the jobs' steps; sets every job's decision."""
        async with tenant_transaction(self._pool, service_scope(tenant_id), readonly=True) as conn:
            rows = {r.id: r for r in await _read(conn, tenant_id, [_record(j) for j in jobs])}
        over: list[uuid.UUID] = []
        finished: list[tuple[uuid.UUID, int]] = []
        sending: list[tuple[Job, _Row, Invitation]] = []
        for job in jobs:
            assert job.target is not None
            row = rows.get(job.target.record_id)
            if row is None or row.batch_id != job.target.batch_id:
                # No schedule (finished, re-invited, purged), or not this tenant's record.
                job.span.set_attribute("credbatch.record.skipped", "NO_REMINDER")
                job.decision = Decision(Outcome.SKIPPED)
                continue
            if not row.open or row.claim_token is None:
                over.append(row.id)
                job.span.set_attribute("credbatch.record.skipped", "NOT_OPEN")
                job.decision = Decision(Outcome.SKIPPED)
                continue
            if row.step != job.target.reminder_step:
                job.span.set_attribute("credbatch.record.skipped", "OTHER_STEP")
                job.decision = Decision(Outcome.SKIPPED)
                continue
            invitation = await self._invitation(job, row)
            if invitation is None:
                # The batch's templates cannot be loaded: this step is given up.
                finished.append((row.id, job.target.reminder_step))
                job.decision = Decision(Outcome.ACK)
                continue
            sending.append((job, row, invitation))
        sending = await self._take(tenant_id, sending)
        deliveries = await self._inviter.send_all([i for _, _, i in sending])
        returned: list[schedules.Channels] = []
        throttles: list[tuple[Throttle, int]] = []
        for (job, row, invitation), delivery in zip(sending, deliveries, strict=True):
            for medium in delivery.sent:
                REMINDERS_SENT.add(1, {"credbatch.reminder.channel": medium.value.lower()})
            decision = decide(delivery.failure, job.attempt, self._settings.max_attempts)
            if delivery.failure is not None and delivery.failure.throttle is not None:
                throttles.append((delivery.failure.throttle, job.attempt))
            if decision.outcome is Outcome.RETRY:
                returned.append((row.id, invitation.reminder_step, invitation.due - delivery.sent))
                job.decision = decision
                continue
            if delivery.failure is not None:
                job.span.set_attribute("credbatch.error_code", delivery.failure.code)
            # Sent, or given up for good: either way this step is over.
            finished.append((row.id, invitation.reminder_step))
            job.decision = Decision(Outcome.ACK)
        if throttles:
            # The provider throttles the tenant: its invitations and reminders on that channel
            # wait in the outbox meanwhile, as after an invitation's throttle.
            await hold_dispatch(self._pool, tenant_id, throttles, self._settings)
        if finished or over or returned:
            async with tenant_transaction(self._pool, service_scope(tenant_id)) as conn:
                await schedules.give_back(conn, tenant_id, returned)
                await schedules.drop(conn, tenant_id, over)
                await schedules.finish_steps(
                    conn, tenant_id, finished, self._settings.reminder_day_seconds
                )

    async def _take(
        self, tenant_id: uuid.UUID, sending: list[tuple[Job, _Row, Invitation]]
    ) -> list[tuple[Job, _Row, Invitation]]:
        """The invitations with only the channels this worker took (committed before any is
        sent); one whose channels were all taken before sends nothing, and its step is over."""
        asked = [(row.id, i.reminder_step, i.due) for _, row, i in sending]
        async with tenant_transaction(self._pool, service_scope(tenant_id)) as conn:
            taken = await schedules.take(conn, tenant_id, asked)
        return [
            (job, row, dataclasses.replace(invitation, due=taken.get(row.id, frozenset())))
            for job, row, invitation in sending
        ]

    async def _invitation(self, job: Job, row: _Row) -> Invitation | None:
        """The step's messages to send, or None when the batch cannot be loaded."""
        assert job.target is not None and row.claim_token is not None
        try:
            base = await self._contexts.get(job.target.tenant_id, row.batch_id)
            if base is None:
                return None
            context = await self._templates.context(base)
        except BatchContextError as error:
            job.span.set_attribute("credbatch.error_code", error.code)
            return None
        except (CredbatchError, TemplateProblem) as error:
            # A reminder template deleted or no longer compiling.
            job.span.set_attribute("credbatch.error_code", type(error).__name__)
            return None
        step = job.target.reminder_step
        sent_before = {Medium.EMAIL} if row.email_step >= step else set()
        sent_before |= {Medium.SMS} if row.sms_step >= step else set()
        links = links_for(
            self._settings.public_url, row.claim_token, row.certificate_id, row.offer_generation
        )
        return Invitation(
            context,
            row.holder,
            links,
            frozenset(context.mediums - sent_before),
            job.span,
            reminder_step=step,
        )


def _record(job: Job) -> uuid.UUID:
    assert job.target is not None
    return job.target.record_id


async def _read(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, record_ids: list[uuid.UUID]
) -> list[_Row]:
    rows: list[Any] = await conn.fetch(READ, tenant_id, record_ids)
    return [
        _Row(
            id=row["id"],
            batch_id=row["batch_id"],
            open=(
                row["state"] == "INVITED"
                and row["link_open"]
                and not row["cancelled"]
                and not row["purged"]
            ),
            step=row["step"],
            email_step=row["email_step"],
            sms_step=row["sms_step"],
            holder=Holder(row["id"], row["email"], row["phone"], dict(row["attributes"])),
            claim_token=row["claim_token"],
            certificate_id=row["certificate_id"],
            offer_generation=row["offer_generation"],
        )
        for row in rows
    ]
