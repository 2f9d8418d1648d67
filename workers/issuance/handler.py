"""Issuance of a group of jobs: credential, certificate, invitations, state, then outcomes.

A group is what the consumer received together (up to a few dozen jobs). A job whose record
another group of this worker is working on is skipped (that group's job settles the record).
Per tenant of the group, in order:

1. one transaction locks the records (id order), skips the cancelled and the finished, signs
   a credential (and renders a certificate) for each record not yet issued, inserts them and
   marks the records ISSUED — ``UNIQUE (tenant_id, record_id)`` on credentials is the final
   guard against two credentials for one record;
2. the batches' states are read again: a batch cancelled since step 1 gets no invitation
   (its records issued in step 1 end CANCELLED);
3. invitations are sent concurrently for each medium not yet sent, each accepted send
   stamped (``*_sent_at``) within a few milliseconds by ``SendLog``, so a re-send after a
   crash or retry sends only what is missing or was in flight;
4. one transaction writes every record's outcome (INVITED, FAILED, CANCELLED, or still ISSUED
   with the attempt counted), then a short one finishes batches with no work left; while the
   database is unavailable these writes are run again until it takes them, the messages held
   unacked meanwhile (``workers.issuance.durable``), since a redelivery would send the
   invitations again;
5. only then is each message acked, republished to its delay queue (and acked), or
   dead-lettered.

Reminder jobs of the group go to ``workers.issuance.reminders`` instead, per tenant, beside
the invitations, and are settled with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial

import asyncpg
from aio_pika.abc import AbstractIncomingMessage
from opentelemetry.trace import Status, StatusCode

from credbatch.batches.lifecycle import Failure, complete_batches, fail_records
from credbatch.batches.model import RecordState
from credbatch.config import Settings
from credbatch.messaging import ConfirmingPublisher
from credbatch.metrics import RECORD_TRANSITIONS, UPLOAD_TO_INVITED
from credbatch.schema.model import Medium
from credbatch.signing import sd_jwt
from credbatch.signing.keys import KeyRing
from credbatch.signing.status_list import StatusAllocator
from credbatch.templating.runner import CertificateJob, Renderer
from credbatch.templating.sandbox import TemplateProblem
from credbatch.tenancy import service_scope, tenant_transaction
from workers.issuance import outcome_repository as outcome_repo
from workers.issuance import repository as repo
from workers.issuance.acks import DeliveryLedger
from workers.issuance.context import ContextCache
from workers.issuance.credential import (
    CredentialDraft,
    draft_credential,
    links_for,
    new_identifiers,
)
from workers.issuance.delivery.email import SmtpPool
from workers.issuance.delivery.sms import SmsClient
from workers.issuance.durable import hold_until_written
from workers.issuance.invitations import Invitation, Inviter
from workers.issuance.job import Job, Target, parse
from workers.issuance.offers import Offers
from workers.issuance.outcome_log import log_outcomes, log_unusable
from workers.issuance.outcomes import (
    Decision,
    IssuanceFailure,
    Outcome,
    decide,
    template_failure,
)
from workers.issuance.reminders import Reminders
from workers.issuance.sent_log import SendLog
from workers.issuance.settle import settle
from workers.issuance.spans import group_spans, step_span
from workers.issuance.throttle import hold_dispatch, throttles_met
from workers.issuance.triage import Triage, WorkRecord, triage

log = logging.getLogger(__name__)

_DB = {"db.system": "postgresql"}
# What the issue transaction locked: records it can fail before any credential exists.
_UNISSUED = (RecordState.PENDING, RecordState.QUEUED)

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
        renderer: Renderer,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._keys = keys
        self._statuses = statuses
        self._publisher = publisher
        self._renderer = renderer
        self._offers = Offers.from_settings(settings)
        self._inviter = Inviter(settings, smtp, sms, renderer, self._offers, SendLog(pool).note)
        self._contexts = ContextCache(pool, settings.public_url)
        self._reminders = Reminders(settings, pool, self._contexts, self._inviter)
        # An issue transaction holds a connection while it loads contexts, keys and status
        # indexes through another one: with every connection held by such a transaction,
        # none could get its second. One connection always stays free for those loads.
        self._issue_slots = asyncio.Semaphore(max(1, pool.get_max_size() - 1))
        # The jobs' targets its groups are working on, from before their issue transaction
        # until their outcomes are written (through a database outage too).
        self._in_hand: set[Target] = set()
        # The consumer notes each delivery here, so that consecutive acks go out as one.
        self.deliveries = DeliveryLedger()

    async def handle(self, messages: Sequence[AbstractIncomingMessage]) -> None:
        """Process a group of messages and settle every one of them."""
        await self.handle_jobs([job for message in messages for job in parse(message)])

    async def handle_jobs(self, jobs: list[Job]) -> None:
        """Process a group of jobs (every job of each of their messages) and settle them."""
        by_tenant: dict[uuid.UUID, list[Job]] = {}
        reminders: dict[uuid.UUID, list[Job]] = {}
        taken: set[Target] = set()
        for job in jobs:
            if job.target is None:
                job.decision = Decision(Outcome.DEAD_LETTER)
            elif job.target in self._in_hand:
                # Another group of this worker works on the record (a job published twice:
                # by a relay window whose commit was lost, by the sweeper): that group's job
                # settles the record, and this one, run beside it, could read the record
                # between its issue and its stamps and send the same invitation again.
                job.span.set_attribute("credbatch.record.skipped", "IN_HAND")
                job.decision = Decision(Outcome.SKIPPED)
            else:
                taken.add(job.target)
                group = reminders if job.target.is_reminder else by_tenant
                group.setdefault(job.target.tenant_id, []).append(job)
        self._in_hand |= taken
        try:
            await asyncio.gather(
                *(self._tenant_group(t, js) for t, js in by_tenant.items()),
                *(self._reminder_group(t, js) for t, js in reminders.items()),
            )
        finally:
            self._in_hand -= taken
        await settle(jobs, self._publisher, self._settings, self.deliveries)

    async def _reminder_group(self, tenant_id: uuid.UUID, jobs: list[Job]) -> None:
        await self._tenant_group(tenant_id, jobs, reminders=True)

    async def _tenant_group(
        self, tenant_id: uuid.UUID, jobs: list[Job], *, reminders: bool = False
    ) -> None:
        try:
            if reminders:
                await self._reminders.process(tenant_id, jobs)
            else:
                await self._process(tenant_id, jobs)
        except Exception as error:
            # Database or broker trouble, or a bug: nothing was committed for the jobs left
            # undecided, so they go round again through the delay queues (bounded by
            # max_attempts). Only the error type is logged: messages may quote data.
            batch_ids = sorted({str(j.target.batch_id) for j in jobs if j.target is not None})
            log.warning(
                "tenant %s: issuance group of %d jobs failed (%s), batches %s",
                tenant_id,
                len(jobs),
                type(error).__name__,
                ", ".join(batch_ids),
                exc_info=log.isEnabledFor(logging.DEBUG),
                extra={"tenant_id": str(tenant_id), "batch_ids": batch_ids},
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
            assert job.target is not None
            requested.setdefault(job.target.record_id, []).append(job)
        found = Triage()
        known: dict[uuid.UUID, repo.NewCredential] = {}
        stored: dict[uuid.UUID, repo.StoredLinks] = {}
        with (
            group_spans("db issue", [j.span for j in jobs], **_DB),
            contextlib.suppress(_NothingToDo),
        ):
            async with (
                self._issue_slots,
                tenant_transaction(self._pool, service_scope(tenant_id)) as conn,
            ):
                rows = await repo.lock_records(
                    conn, tenant_id, list(requested), self._settings.invite_lease
                )
                found = await triage(tenant_id, requested, rows, self._contexts)
                if found.nothing_to_write:
                    # Only foreign, skipped or finished jobs: roll back, so that not even the
                    # tenant row a forged job's tenant id would provision is written.
                    raise _NothingToDo
                if found.starting:
                    await repo.mark_in_progress(conn, tenant_id, list(found.starting))
                known = await self._issue(conn, tenant_id, found.to_issue)
                await repo.mark_reissued(
                    conn, tenant_id, [(r.id, r.attempt) for r in found.reissued]
                )
                failed = [
                    Failure(r.id, r.failure.code, r.failure.message, r.attempt)
                    for r in found.to_issue
                    if r.failure is not None
                ]
                failed += [
                    Failure(u.record_id, u.error.code, u.error.message, u.attempt)
                    for u in found.unusable
                ]
                await fail_records(conn, tenant_id, failed, from_states=_UNISSUED)
                # Links of credentials stored just now are known; only records issued
                # before (redeliveries, retries) need theirs read back.
                unknown = [r.id for r in found.records if r.failure is None and r.id not in known]
                stored = await repo.stored_links(conn, tenant_id, unknown)
                await self._store_current_offers(conn, tenant_id, found.records, stored)
        if known:  # committed: the issue transaction has ended
            RECORD_TRANSITIONS.add(len(known), {"credbatch.record.state": RecordState.ISSUED.value})
        if found.unusable:
            log_unusable(tenant_id, found.unusable)
        deliverable = [r for r in found.records if r.failure is None]
        public = self._settings.public_url
        for record in deliverable:
            if record.id in known:
                new = known[record.id]
                certificate_id = new.certificate_id if new.pdf is not None else None
                record.links = links_for(public, new.claim_token, certificate_id)
            elif record.id in stored:
                old = stored[record.id]
                record.links = links_for(
                    public, old.claim_token, old.certificate_id, old.offer_generation
                )
            else:
                raise RuntimeError("an issued record has no credential")
        cancelled = await self._cancelled_since(tenant_id, deliverable)
        await self._invite([r for r in deliverable if r.id not in cancelled])
        await self._finish(
            tenant_id,
            found.records,
            found.recheck | {u.batch_id for u in found.unusable},
            cancelled,
        )
        for unusable in found.unusable:
            for job in unusable.jobs:
                job.decision = Decision(Outcome.ACK)

    async def _issue(
        self, conn: asyncpg.Connection, tenant_id: uuid.UUID, records: list[WorkRecord]
    ) -> dict[uuid.UUID, repo.NewCredential]:
        """Sign and store the records' credentials; returns those stored now, by record.

        A record whose certificate cannot be rendered gets its failure instead.
        """
        if not records:
            return {}
        key = await self._keys.active_key(tenant_id)
        entries = await self._statuses.take(tenant_id, len(records))
        now = int(time.time())
        drafts = [
            draft_credential(
                record.context,
                record.holder,
                ids=new_identifiers(tenant_id, record.context),
                status=entry,
                issued_at=now,
                public_url=self._settings.public_url,
            )
            for record, entry in zip(records, entries, strict=True)
        ]
        pdfs = await self._render_certificates(tenant_id, records, drafts)
        issued: list[repo.NewCredential] = []
        for record, entry, draft in zip(records, entries, drafts, strict=True):
            pdf = pdfs.get(record.id)
            if isinstance(pdf, TemplateProblem):  # the batch's template, not our fault
                record.failure = template_failure(pdf.code, str(pdf))
                continue
            with step_span("sign credential", record.span, **{"credbatch.kid": key.kid}):
                token = sd_jwt.issue(
                    key=key.private_key,
                    kid=key.kid,
                    claims=draft.claims,
                    disclosable=draft.disclosable,
                )
            issued.append(
                repo.NewCredential(
                    id=uuid.uuid4(),
                    record_id=record.id,
                    batch_id=record.context.batch_id,
                    list_id=entry.list_id,
                    index=entry.index,
                    sd_jwt=token,
                    claim_token=draft.ids.claim_token,
                    expires_at=draft.expires_at,
                    attempt=record.attempt,
                    certificate_id=draft.ids.certificate_id,
                    pdf=pdf,
                )
            )
        stored = await repo.insert_issued(
            conn, tenant_id, key.kid, issued, self._settings.claim_ttl
        )
        contexts = {r.id: r.context for r in records}
        await self._offers.store(
            conn,
            tenant_id,
            [(c.record_id, c.claim_token, contexts[c.record_id]) for c in issued],
        )
        return {c.record_id: c for c in issued if c.record_id in stored}

    async def _store_current_offers(
        self,
        conn: asyncpg.Connection,
        tenant_id: uuid.UUID,
        records: list[WorkRecord],
        stored: dict[uuid.UUID, repo.StoredLinks],
    ) -> None:
        """Store the current offer of records issued before, where it is missing.

        ResendInvitations deleted the offer it replaced: the next generation's is stored here,
        in the transaction that makes the record ISSUED again, so no invitation carries an
        offer that is not stored. Any other record keeps the offer it has.
        """
        contexts = {r.id: r.context for r in records}
        await self._offers.store(
            conn,
            tenant_id,
            [(rid, links.claim_token, contexts[rid]) for rid, links in stored.items()],
            {rid: links.offer_generation for rid, links in stored.items()},
        )

    async def _render_certificates(
        self, tenant_id: uuid.UUID, records: list[WorkRecord], drafts: list[CredentialDraft]
    ) -> dict[uuid.UUID, bytes | TemplateProblem]:
        """The PDFs of the records whose batch issues certificates, in one render request."""
        wanted = [
            (record, draft.certificate)
            for record, draft in zip(records, drafts, strict=True)
            if draft.certificate is not None
        ]
        if not wanted:
            return {}
        jobs = [CertificateJob(c.template, c.values, c.cred_url) for _, c in wanted]
        with group_spans("render certificate", [record.span for record, _ in wanted]):
            results = await self._renderer.render(str(tenant_id), jobs)
        pdfs: dict[uuid.UUID, bytes | TemplateProblem] = {}
        for (record, _), result in zip(wanted, results, strict=True):
            assert isinstance(result, bytes | TemplateProblem)
            pdfs[record.id] = result
        return pdfs

    async def _cancelled_since(
        self, tenant_id: uuid.UUID, records: list[WorkRecord]
    ) -> set[uuid.UUID]:
        """The records whose batch was cancelled after the issue transaction read it."""
        if not records:
            return set()
        batch_ids = list({r.context.batch_id for r in records})
        async with tenant_transaction(self._pool, service_scope(tenant_id), readonly=True) as c:
            batches = await outcome_repo.cancelled_batches(c, tenant_id, batch_ids)
        return {r.id for r in records if r.context.batch_id in batches}

    async def _invite(self, records: list[WorkRecord]) -> None:
        invitations = []
        for record in records:
            assert record.links is not None
            invitations.append(
                Invitation(record.context, record.holder, record.links, record.due, record.span)
            )
        deliveries = await self._inviter.send_all(invitations)
        for record, delivery in zip(records, deliveries, strict=True):
            record.sent, record.failure = delivery.sent, delivery.failure

    async def _write_outcomes(
        self,
        tenant_id: uuid.UUID,
        outcomes: list[outcome_repo.RecordOutcome],
        finished_batches: set[uuid.UUID],
    ) -> set[uuid.UUID]:
        """Write the outcomes in one transaction; returns the batches among
        ``finished_batches`` that may be finished now."""
        async with tenant_transaction(self._pool, service_scope(tenant_id)) as conn:
            await outcome_repo.write_outcomes(
                conn, tenant_id, outcomes, self._settings.reminder_day_seconds
            )
            if not finished_batches:
                return set()
            # Records other workers hold uncommitted still look unfinished here; they are at
            # most the prefetched jobs of every worker, so only a batch with fewer open
            # records than the bound can be done now.
            return await outcome_repo.nearly_finished(
                conn, tenant_id, list(finished_batches), _NEAR_END
            )

    async def _complete(self, tenant_id: uuid.UUID, batch_ids: set[uuid.UUID]) -> None:
        async with tenant_transaction(self._pool, service_scope(tenant_id)) as conn:
            await complete_batches(conn, tenant_id, list(batch_ids))

    async def _finish(
        self,
        tenant_id: uuid.UUID,
        records: list[WorkRecord],
        finished_batches: set[uuid.UUID],
        cancelled: set[uuid.UUID],
    ) -> None:
        """Commit the records' outcomes, complete the batches left with no work, decide.

        The records in ``cancelled`` were not invited (their batch was cancelled meanwhile).
        """
        outcomes: list[outcome_repo.RecordOutcome] = []
        decisions: list[Decision] = []
        for record in records:
            failure = record.failure
            decision = decide(failure, record.attempt, self._settings.max_attempts)
            state: RecordState | None
            if record.id in cancelled:
                state = RecordState.CANCELLED
            elif failure is None:
                state = RecordState.INVITED
            elif decision.outcome is Outcome.RETRY:
                state = None
            else:
                state = RecordState.FAILED
            if state is not None:
                finished_batches.add(record.context.batch_id)
            outcomes.append(
                outcome_repo.RecordOutcome(
                    record_id=record.id,
                    state=state,
                    email_sent=Medium.EMAIL in record.sent,
                    sms_sent=Medium.SMS in record.sent,
                    code=failure.code if failure else None,
                    message=failure.message if failure else None,
                    attempt=record.attempt,
                )
            )
            decisions.append(decision)
        with group_spans("db outcome", [j.span for r in records for j in r.jobs], **_DB):
            # Invitations may have gone out: held through a database outage rather than
            # redelivered and sent again (workers.issuance.durable). Each unit is idempotent.
            if outcomes:
                finished_batches = await hold_until_written(
                    partial(self._write_outcomes, tenant_id, outcomes, set(finished_batches)),
                    f"outcomes of {len(outcomes)} records",
                )
            if finished_batches:
                await hold_until_written(
                    partial(self._complete, tenant_id, finished_batches),
                    f"completions of {len(finished_batches)} batches",
                )
        entered = Counter(o.state for o in outcomes if o.state is not None)
        for state, count in entered.items():
            RECORD_TRANSITIONS.add(count, {"credbatch.record.state": state.value})
        _time_since_upload(
            [r for r, o in zip(records, outcomes, strict=True) if o.state is RecordState.INVITED]
        )
        log_outcomes(tenant_id, records, decisions, cancelled)
        throttles = throttles_met(records)
        if throttles:
            await hold_until_written(
                partial(hold_dispatch, self._pool, tenant_id, throttles, self._settings),
                f"dispatch holds of {len(throttles)} throttled sends",
            )
        # Decisions only now: a job is never acked before its record's outcome committed.
        for record, decision in zip(records, decisions, strict=True):
            for job in record.jobs:
                job.decision = decision
                if record.failure is not None:
                    job.span.set_attribute("credbatch.error_code", record.failure.code)


def _time_since_upload(invited: list[WorkRecord]) -> None:
    """Record the upload-to-invited time of records just made INVITED (the SLO's histogram)."""
    now = datetime.now(UTC)
    for record in invited:
        uploaded = record.context.uploaded_at
        if uploaded is not None:
            UPLOAD_TO_INVITED.record(max(0.0, (now - uploaded).total_seconds()))
