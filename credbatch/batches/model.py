"""What a batch looks like to its readers.

The record states are the source of truth. A batch's state follows from its records' counts
by one rule, the SQL function ``batch_state_of``: the readers
(``credbatch.batches.repository``) show what it gives, and ``batches.state`` in the database is
the copy that ``credbatch.batches.lifecycle.complete_batches`` stores when a batch finishes (it
serves the ``state`` filter of ListBatches and lets the outbox relay skip cancelled batches).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from credbatch import names
from credbatch.batches.claim_mode import ClaimMode

# Where a page of the newest-first history ended; the kernel's keyset position.
from credbatch.paging import PagePosition as PagePosition


class BatchState(enum.StrEnum):
    """Batch states, spelled as stored in ``batches.state``."""

    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    COMPLETED_WITH_ERRORS = "COMPLETED_WITH_ERRORS"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


class RecordState(enum.StrEnum):
    """Record states, spelled as stored in ``records.state``."""

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    ISSUED = "ISSUED"
    INVITED = "INVITED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    CLAIMED = "CLAIMED"
    REVOKED = "REVOKED"
    # The claim link ran out unclaimed; a resend or a contact correction invites it again.
    EXPIRED = "EXPIRED"


# A record in one of these states needs no more work (FAILED only until someone retries it).
TERMINAL_RECORD_STATES: frozenset[RecordState] = frozenset(
    {
        RecordState.INVITED,
        RecordState.FAILED,
        RecordState.CANCELLED,
        RecordState.CLAIMED,
        RecordState.REVOKED,
        RecordState.EXPIRED,
    }
)
# A record in one of these states has a credential that may be revoked.
REVOCABLE_RECORD_STATES: frozenset[RecordState] = frozenset(
    {RecordState.ISSUED, RecordState.INVITED, RecordState.CLAIMED, RecordState.EXPIRED}
)
TERMINAL_BATCH_STATES: frozenset[BatchState] = frozenset(
    {
        BatchState.COMPLETED,
        BatchState.COMPLETED_WITH_ERRORS,
        BatchState.CANCELLED,
        BatchState.FAILED,
    }
)


@dataclass(frozen=True)
class RecordCounts:
    """Number of a batch's records in each state, and, across the states, how many had an
    invitation confirmed delivered or bounced (a record may be both: its email bounced and
    its SMS arrived)."""

    pending: int = 0
    queued: int = 0
    issued: int = 0
    invited: int = 0
    failed: int = 0
    cancelled: int = 0
    claimed: int = 0
    revoked: int = 0
    expired: int = 0
    delivered: int = 0
    bounced: int = 0

    @classmethod
    def from_mapping(cls, counts: Mapping[str, int]) -> RecordCounts:
        """Build from ``{state: count}`` as read from the database; unknown states are an error."""
        values = {RecordState(state).value.lower(): int(n) for state, n in counts.items()}
        return cls(**values)

    def of(self, state: RecordState) -> int:
        value: int = getattr(self, state.value.lower())
        return value

    @property
    def terminal(self) -> int:
        """Records needing no more work."""
        return (
            self.invited + self.failed + self.cancelled + self.claimed + self.revoked + self.expired
        )


@dataclass(frozen=True)
class UploadedBatch:
    """What its upload fixed about a batch: the schema, mediums and templates it is issued
    with, how its holders take their credentials, and who sent which file. Stored once by the
    upload, then only read.

    No slots: BatchView copies a view through ``__dict__``, which slotted fields are not in.
    """

    id: uuid.UUID
    schema_id: uuid.UUID
    schema_version: int
    mediums: tuple[str, ...]
    email_template_id: uuid.UUID | None
    sms_template_id: uuid.UUID | None
    certificate_template_id: uuid.UUID | None
    creator: str
    department: str
    filename: str
    claim_mode: ClaimMode


@dataclass(frozen=True)
class BatchView(UploadedBatch):
    """One batch as its readers see it: what was uploaded and how far its issuance is."""

    state: BatchState
    total: int
    counts: RecordCounts
    create_time: datetime
    update_time: datetime
    complete_time: datetime | None = None
    cancel_time: datetime | None = None
    estimated_complete_time: datetime | None = None
    # Records that became terminal per second, recently; 0 when unknown.
    recent_rate: float = field(default=0.0, compare=False)
    # The reminder schedule (days after the invitation; empty = none) and its templates (None
    # = the built-in reminder wording).
    reminder_days: tuple[int, ...] = ()
    reminder_email_template_id: uuid.UUID | None = None
    reminder_sms_template_id: uuid.UUID | None = None
    # Reminders sent to the batch's holders (read by GetBatch only; 0 in lists).
    reminders_sent: int = 0

    @property
    def name(self) -> str:
        return names.format_name(names.BATCHES, self.id)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_BATCH_STATES

    @property
    def percent_done(self) -> float:
        """Share of records in a terminal state, 0 to 100 (an empty batch is done)."""
        if self.total <= 0:
            return 100.0
        return min(100.0, 100.0 * self.counts.terminal / self.total)

    def progress_key(self) -> tuple[object, ...]:
        """What a watcher considers a change (the estimate alone moving is not one)."""
        return (self.state, self.counts, self.update_time, self.complete_time, self.total)


def estimate_completion(
    now: datetime, remaining: int, finished_recently: int, window: timedelta
) -> tuple[datetime | None, float]:
    """Completion estimate from recent throughput: ``finished_recently`` records in ``window``.

    Returns the estimated completion time (None when nothing finished recently, so there is no
    throughput to extrapolate) and the rate in records per second.
    """
    seconds = window.total_seconds()
    if remaining <= 0 or finished_recently <= 0 or seconds <= 0:
        return None, 0.0
    rate = finished_recently / seconds
    return now + timedelta(seconds=remaining / rate), rate


@dataclass(frozen=True)
class TimeBound:
    """One ``create_time`` comparison of a filter: ``create_time <op> at``."""

    op: str  # one of <, <=, >, >=
    at: datetime


@dataclass(frozen=True)
class BatchFilter:
    """Conditions on the upload history, all of which must hold (AIP-160 conjunction)."""

    states: tuple[BatchState, ...] = ()
    creators: tuple[str, ...] = ()
    departments: tuple[str, ...] = ()
    schema_ids: tuple[uuid.UUID, ...] = ()
    create_time: tuple[TimeBound, ...] = ()
