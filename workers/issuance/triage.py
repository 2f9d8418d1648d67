"""What each locked record of a group needs, decided before anything is written.

A job whose record is not its tenant's or not in its batch is dead-lettered; a record that
is finished, cancelled or in a cancelled batch is skipped (its job acked); a record another
job issued moments ago (``Settings.invite_lease``) and wrote no outcome for yet is left to
that job, this one retried after the lease at the same attempt; a record whose batch cannot
be issued fails; every other record is worked on: issued and invited when
PENDING or QUEUED without a credential, only invited when it holds one (ISSUED: a redelivery
after a crash; PENDING or QUEUED: a retried record issued before, or a resent invitation).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from opentelemetry.trace import Span

from credbatch.batches.model import TERMINAL_RECORD_STATES, BatchState, RecordState
from credbatch.schema.model import Medium
from workers.issuance.context import BatchContext, BatchContextError, ContextCache
from workers.issuance.credential import Holder, Links
from workers.issuance.job import Job
from workers.issuance.outcomes import Decision, IssuanceFailure, Outcome
from workers.issuance.repository import LockedRecord


@dataclass
class WorkRecord:
    """A locked record to issue and invite, and the jobs (usually one) that asked for it."""

    holder: Holder
    jobs: list[Job]
    context: BatchContext
    due: frozenset[Medium]  # the batch's mediums not sent to the holder before
    links: Links | None = None
    failure: IssuanceFailure | None = None
    sent: frozenset[Medium] = frozenset()  # sent by this attempt

    @property
    def id(self) -> uuid.UUID:
        return self.holder.record_id

    @property
    def span(self) -> Span:
        return self.jobs[0].span

    @property
    def attempt(self) -> int:
        return max(j.attempt for j in self.jobs)


@dataclass(frozen=True)
class Unusable:
    """A record of a batch that cannot be issued at all (its templates are missing or bad)."""

    record_id: uuid.UUID
    batch_id: uuid.UUID
    jobs: list[Job]
    error: BatchContextError

    @property
    def attempt(self) -> int:
        return max(j.attempt for j in self.jobs)


@dataclass
class Triage:
    """The records of a tenant's jobs that need work (the other jobs are decided already)."""

    records: list[WorkRecord] = field(default_factory=list)
    to_issue: list[WorkRecord] = field(default_factory=list)  # not issued before
    # PENDING or QUEUED again though issued before: ISSUED again, invited, never re-signed.
    reissued: list[WorkRecord] = field(default_factory=list)
    unusable: list[Unusable] = field(default_factory=list)
    starting: set[uuid.UUID] = field(default_factory=set)  # batches still QUEUED
    recheck: set[uuid.UUID] = field(default_factory=set)  # batches maybe left unfinished

    @property
    def nothing_to_write(self) -> bool:
        return not self.records and not self.unusable


async def triage(
    tenant_id: uuid.UUID,
    requested: dict[uuid.UUID, list[Job]],
    locked: dict[uuid.UUID, LockedRecord],
    contexts: ContextCache,
) -> Triage:
    """Sort the ``requested`` records by the work they need; decide the jobs that need none.

    Args:
        requested: the jobs of one tenant by the record they name.
        locked: the tenant's records among them, locked by the caller's transaction.
        contexts: loads the batches' contexts (through a connection of its own).
    """
    found = Triage()
    for record_id, record_jobs in requested.items():
        row = locked.get(record_id)
        if row is None or any(
            j.target is None or j.target.batch_id != row.batch_id for j in record_jobs
        ):
            # Not this tenant's record (RLS hides it), or not in that batch.
            for j in record_jobs:
                j.span.set_attribute("credbatch.job.foreign", True)
                j.decision = Decision(Outcome.DEAD_LETTER)
            continue
        if row.state in TERMINAL_RECORD_STATES or row.batch_state is BatchState.CANCELLED:
            if row.state in (RecordState.INVITED, RecordState.FAILED) and row.batch_state in (
                BatchState.QUEUED,
                BatchState.IN_PROGRESS,
            ):
                # A redelivery after a crash between the outcome and the batch's
                # completion: check the batch again.
                found.recheck.add(row.batch_id)
            for j in record_jobs:
                j.span.set_attribute("credbatch.record.skipped", row.state.value)
                j.decision = Decision(Outcome.SKIPPED)
            continue
        if row.state is RecordState.ISSUED and row.in_hand_for > 0:
            # Issued moments ago by another job (a second copy of this one: a relay window
            # published again after its commit was lost), whose worker is sending now and
            # stamps the sends as the server accepts them: inviting here too would invite
            # twice. Come back at the same attempt once the lease is over: the record is then
            # INVITED (skipped), or still ISSUED because that worker died (invited then).
            for j in record_jobs:
                j.span.set_attribute("credbatch.record.in_hand_elsewhere", True)
                j.decision = Decision(Outcome.RETRY, j.attempt, wait=row.in_hand_for)
            continue
        try:
            context = await contexts.get(tenant_id, row.batch_id)
        except BatchContextError as error:
            # The batch itself cannot be issued: every record of it fails.
            found.unusable.append(Unusable(record_id, row.batch_id, record_jobs, error))
            continue
        if context is None:
            raise RuntimeError("a locked record's batch could not be loaded")
        sent_before = {Medium.EMAIL} if row.email_sent else set()
        sent_before |= {Medium.SMS} if row.sms_sent else set()
        record = WorkRecord(
            holder=Holder(record_id, row.email, row.phone, row.attributes, row.email_send),
            jobs=record_jobs,
            context=context,
            due=context.mediums - sent_before,
        )
        found.records.append(record)
        if row.state in (RecordState.PENDING, RecordState.QUEUED):
            (found.reissued if row.has_credential else found.to_issue).append(record)
            if row.batch_state is BatchState.QUEUED:
                # Only a batch's first groups mark it (a batch never goes back to QUEUED).
                found.starting.add(row.batch_id)
    return found
