"""The record lifecycle: which state changes are legal, and the shared writers of its ends.

The legal changes of ``records.state`` are data in the database (table ``record_transitions``)
and the trigger ``records_state_guard`` refuses every other, whoever writes it; ``TRANSITIONS``
below is the same set for Python readers, and ``tests/batches/test_lifecycle.py`` keeps the two
equal. ``docs/architecture.md`` draws it.

Two ends are written by more than one process, so they are written here once:

* a record fails (``fail_records``): the issuance worker (a record it cannot issue, an
  invitation that failed for good) and the relay's dead-letter consumer;
* a batch finishes (``complete_batches``): after either of those, and after invitations.
  The rule that decides a batch's state is the SQL function ``batch_state_of``, which the
  readers of ``credbatch.batches.repository`` show and ``batches_complete`` stores.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from credbatch.batches.model import RecordState

S = RecordState

# Every legal (from, to) change of a record's state; equal to the table record_transitions.
TRANSITIONS: Mapping[RecordState, frozenset[RecordState]] = {
    S.PENDING: frozenset({S.QUEUED, S.ISSUED, S.FAILED, S.CANCELLED}),
    S.QUEUED: frozenset({S.PENDING, S.ISSUED, S.FAILED, S.CANCELLED}),
    S.ISSUED: frozenset({S.INVITED, S.FAILED, S.CANCELLED, S.CLAIMED, S.REVOKED}),
    S.INVITED: frozenset({S.PENDING, S.CLAIMED, S.REVOKED, S.EXPIRED}),
    S.CLAIMED: frozenset({S.REVOKED}),
    S.FAILED: frozenset({S.PENDING}),
    S.CANCELLED: frozenset(),
    S.REVOKED: frozenset(),
    S.EXPIRED: frozenset({S.PENDING, S.REVOKED}),
}


def allowed(source: RecordState, target: RecordState) -> bool:
    """Whether a record may change from ``source`` to ``target`` (the same state is no change)."""
    return target in TRANSITIONS[source]


# One statement for a whole group. Only records still in one of the given states change: a
# record finished or cancelled meanwhile keeps its own state. attempt NULL keeps the stored one.
_FAIL = """
UPDATE records r
SET state = 'FAILED', error_code = u.code, error_message = u.message,
    attempt = coalesce(u.attempt, r.attempt), updated_at = now()
FROM unnest($2::uuid[], $3::uuid[], $4::int[], $5::text[], $6::text[])
     AS u(id, batch_id, attempt, code, message)
WHERE r.tenant_id = $1 AND r.id = u.id AND (u.batch_id IS NULL OR r.batch_id = u.batch_id)
  AND r.state = ANY ($7::text[])
"""


@dataclass(frozen=True)
class Failure:
    """Why one record fails.

    Attributes:
        record_id: the record.
        code: the stable error code shown in the report (UPPER_SNAKE).
        message: what went wrong, for the issuer (no personal data).
        attempt: the attempt that failed; None keeps the stored one.
        batch_id: when given, the record changes only if it belongs to this batch.
    """

    record_id: uuid.UUID
    code: str
    message: str
    attempt: int | None = None
    batch_id: uuid.UUID | None = None


async def fail_records(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    failures: Sequence[Failure],
    *,
    from_states: Collection[RecordState],
) -> int:
    """Make the records FAILED that are still in one of ``from_states``; how many changed.

    Every ``from_states`` must be a state FAILED may follow (``TRANSITIONS``).
    """
    if not failures:
        return 0
    wrong = sorted(s for s in from_states if not allowed(s, RecordState.FAILED))
    if wrong:
        raise ValueError(f"a record cannot fail from {', '.join(wrong)}")
    status: str = await conn.execute(
        _FAIL,
        tenant_id,
        [f.record_id for f in failures],
        [f.batch_id for f in failures],
        [f.attempt for f in failures],
        [f.code for f in failures],
        [f.message for f in failures],
        sorted(from_states),
    )
    return int(status.rsplit(" ", 1)[1])


async def complete_batches(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, batch_ids: Sequence[uuid.UUID]
) -> int:
    """Store the final state of those batches whose records are all finished; how many.

    Run in a transaction of its own after the records' changes committed, so that the last
    writer to commit sees every other record finished.
    """
    if not batch_ids:
        return 0
    changed: int = await conn.fetchval(
        "SELECT batches_complete($1, $2::uuid[])", tenant_id, list(batch_ids)
    )
    return changed
