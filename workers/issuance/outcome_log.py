"""Log lines of the issuance worker for what an on-call engineer looks for: FAILED records,
retries and dead-lettered jobs.

One line per batch of a group and kind of outcome, never one per record: a provider outage
fails or retries thousands of records at once. Each line is logged with a job of that batch
as the current span, so it carries the trace id of the batch's upload (every job of a batch
joins that trace) and can be followed to the spans. Lines carry identifiers, attempts and
error codes only: never an address, a number, an attribute value or a provider's reply
(the stored error message may quote one).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.trace import Span

from workers.issuance.job import Job
from workers.issuance.outcomes import Decision, Outcome
from workers.issuance.triage import Unusable, WorkRecord

log = logging.getLogger(__name__)

# Record ids listed on one line at most; the count says how many there were.
MAX_IDS = 20


@dataclass
class _BatchLine:
    """One line about one batch: how many, which records (the first MAX_IDS), which codes."""

    tenant_id: uuid.UUID
    batch_id: uuid.UUID
    span: Span  # a job of the batch: its trace is the batch's upload's
    count: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    record_ids: list[str] = field(default_factory=list)
    attempts: set[int] = field(default_factory=set)

    def add(self, record_id: uuid.UUID, code: str | None, attempt: int) -> None:
        self.count += 1
        if code is not None:
            self.codes[code] += 1
        if len(self.record_ids) < MAX_IDS:
            self.record_ids.append(str(record_id))
        self.attempts.add(attempt)

    def emit(self, level: int, what: str) -> None:
        codes = ", ".join(f"{code} x{n}" for code, n in sorted(self.codes.items()))
        with trace.use_span(self.span, end_on_exit=False):
            log.log(
                level,
                "tenant %s batch %s: %d %s%s",
                self.tenant_id,
                self.batch_id,
                self.count,
                what,
                f" ({codes})" if codes else "",
                extra={
                    "tenant_id": str(self.tenant_id),
                    "batch_id": str(self.batch_id),
                    "count": self.count,
                    "error_codes": dict(self.codes),
                    "record_ids": self.record_ids,
                    "attempts": sorted(self.attempts),
                },
            )


def log_outcomes(
    tenant_id: uuid.UUID,
    records: Sequence[WorkRecord],
    decisions: Sequence[Decision],
    cancelled: set[uuid.UUID],
) -> None:
    """After the outcome commit: the records that became FAILED (WARNING) and those left to be
    retried (INFO), per batch, with their error codes."""
    failed: dict[uuid.UUID, _BatchLine] = {}
    retried: dict[uuid.UUID, _BatchLine] = {}
    for record, decision in zip(records, decisions, strict=True):
        failure = record.failure
        if failure is None or record.id in cancelled:
            continue
        lines = retried if decision.outcome is Outcome.RETRY else failed
        batch_id = record.context.batch_id
        line = lines.setdefault(batch_id, _BatchLine(tenant_id, batch_id, record.span))
        line.add(record.id, failure.code, record.attempt)
    for line in failed.values():
        line.emit(logging.WARNING, "records FAILED")
    for line in retried.values():
        line.emit(logging.INFO, "records to be retried")


def log_unusable(tenant_id: uuid.UUID, unusable: Sequence[Unusable]) -> None:
    """After the issue commit: records FAILED because their batch cannot be issued at all."""
    lines: dict[uuid.UUID, _BatchLine] = {}
    for u in unusable:
        line = lines.setdefault(u.batch_id, _BatchLine(tenant_id, u.batch_id, u.jobs[0].span))
        line.add(u.record_id, u.error.code, u.attempt)
    for line in lines.values():
        line.emit(logging.WARNING, "records FAILED: the batch cannot be issued")


def log_settled(jobs: Sequence[Job], republished: bool) -> None:
    """After settling: jobs dead-lettered (WARNING) and retries sent to their delay queues
    (INFO), per batch; malformed jobs, which name no batch, on a line of their own.

    ``republished``: whether the retries, and the jobs of messages of several to dead-letter,
    were published (when not, their messages were requeued instead)."""
    dead = [
        j
        for j in jobs
        if j.decision
        and j.decision.outcome is Outcome.DEAD_LETTER
        and (republished or j.body is None)
    ]
    retried = [j for j in jobs if j.decision and j.decision.outcome is Outcome.RETRY]
    malformed = [j for j in dead if j.target is None]
    if malformed:
        log.warning(
            "%d malformed jobs dead-lettered (message ids %s)",
            len(malformed),
            ", ".join(str(j.message.message_id) for j in malformed[:MAX_IDS]),
            extra={"count": len(malformed)},
        )
    _per_batch(
        [j for j in dead if j.target is not None],
        logging.WARNING,
        "jobs dead-lettered (out of attempts, foreign to the tenant or batch)",
    )
    if republished:
        _per_batch(retried, logging.INFO, "jobs sent to their delay queues for a retry")


def _per_batch(jobs: Sequence[Job], level: int, what: str) -> None:
    lines: dict[uuid.UUID, _BatchLine] = {}
    for job in jobs:
        target = job.target
        assert target is not None
        line = lines.setdefault(
            target.batch_id, _BatchLine(target.tenant_id, target.batch_id, job.span)
        )
        line.add(target.record_id, None, job.attempt)
    for line in lines.values():
        line.emit(level, what)
