"""SQL of the issuance worker after the invitations: sends stamped as the server accepts them
(in ``record_sends``),
and each record's outcome (batches left without work are completed by
``credbatch.batches.lifecycle.complete_batches``).

Each statement handles a whole group of records at once, and locks records (in id order)
before any batches row, as ``workers.issuance.repository`` does.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from credbatch.batches.lifecycle import Failure, fail_records
from credbatch.batches.model import RecordState
from credbatch.schema.model import Medium

# state NULL = keep (a transient failure: the record stays ISSUED and will be retried; a
# permanent one, which write_outcomes then fails through the lifecycle's writer);
# CANCELLED = its batch was cancelled before the invitations went out (none were sent).
# Only an ISSUED record changes state: a record cancelled or finished meanwhile keeps its own,
# CLAIMED included (a wallet can take the offer before this write).
# A record made INVITED here (invited_at = now(), this transaction's time) in a batch with
# reminder days gets its reminder schedule, starting over when it was invited before (a
# resend or a correction invites it again with a new link).
WRITE_OUTCOMES = """
WITH written AS (
UPDATE records r
SET email_sent_at = CASE WHEN u.email_sent THEN coalesce(r.email_sent_at, now())
                         ELSE r.email_sent_at END,
    sms_sent_at = CASE WHEN u.sms_sent THEN coalesce(r.sms_sent_at, now())
                       ELSE r.sms_sent_at END,
    state = CASE WHEN r.state = 'ISSUED' THEN coalesce(u.state, r.state) ELSE r.state END,
    invited_at = CASE WHEN r.state = 'ISSUED' AND u.state = 'INVITED' THEN now()
                      ELSE r.invited_at END,
    error_code = CASE WHEN r.state = 'ISSUED' THEN u.code ELSE r.error_code END,
    error_message = CASE WHEN r.state = 'ISSUED' THEN u.message ELSE r.error_message END,
    attempt = u.attempt,
    updated_at = now()
FROM unnest($2::uuid[], $3::text[], $4::bool[], $5::bool[], $6::text[], $7::text[], $8::int[])
     AS u(id, state, email_sent, sms_sent, code, message, attempt)
WHERE r.tenant_id = $1 AND r.id = u.id
RETURNING r.id, r.batch_id, r.state, r.invited_at
)
INSERT INTO record_reminders (tenant_id, record_id, batch_id, step, due_at)
SELECT $1, w.id, w.batch_id, 1,
       w.invited_at + make_interval(secs => b.reminder_days[1] * $9::double precision)
FROM written w
JOIN batches b ON b.tenant_id = $1 AND b.id = w.batch_id
WHERE w.state = 'INVITED' AND w.invited_at = now() AND b.reminder_days IS NOT NULL
ORDER BY w.id
ON CONFLICT (tenant_id, record_id) DO UPDATE
SET step = 1, due_at = EXCLUDED.due_at, queued_at = NULL, email_step = 0, sms_step = 0
"""

# One short transaction per window of accepted sends (workers.issuance.sent_log), in a table
# of their own: the records are not touched, so no record lock is taken and no row rewritten.
# A send stamped twice (a duplicate job's) keeps its first time.
STAMP_SENT = """
INSERT INTO record_sends (tenant_id, record_id, medium, message_id)
SELECT $1, s.id, s.medium, s.message_id
FROM unnest($2::uuid[], $3::text[], $4::text[]) AS s(id, medium, message_id)
ORDER BY s.id, s.medium
ON CONFLICT DO NOTHING
"""

# Reminders accepted by the server: the step each channel was last sent, per record (the
# greatest, so a late stamp of an earlier step cannot take a later one back).
STAMP_REMINDERS = """
UPDATE record_reminders m
SET email_step = greatest(m.email_step, coalesce(s.email_step, 0)),
    sms_step = greatest(m.sms_step, coalesce(s.sms_step, 0))
FROM (SELECT u.id, max(u.step) FILTER (WHERE u.medium = 'EMAIL') AS email_step,
             max(u.step) FILTER (WHERE u.medium = 'SMS') AS sms_step
      FROM unnest($2::uuid[], $3::text[], $4::int[]) AS u(id, medium, step)
      GROUP BY u.id) s
WHERE m.tenant_id = $1 AND m.record_id = s.id
"""

# Read just before a group's invitations go out, outside any transaction: a batch cancelled
# after the group's issue transaction gets no new invitation from it.
CANCELLED_BATCHES = """
SELECT id FROM batches WHERE tenant_id = $1 AND id = ANY($2::uuid[]) AND state = 'CANCELLED'
"""

# Inside the outcome transaction: how many records of each batch are still to finish, as
# this transaction sees it (its own updates, others' commits), counted only up to a bound.
# Far from the end of a batch the completion transaction is skipped; close to it, it runs.
# A batch with a PENDING record is far from its end whatever the count: whoever finishes that
# record asks again. One probe of the PENDING index answers that for most of a batch's life,
# where counting its open records would read up to the bound of index entries per group.
REMAINING = """
SELECT b.id,
       CASE WHEN EXISTS (SELECT 1 FROM records r
                         WHERE r.tenant_id = $1 AND r.batch_id = b.id AND r.state = 'PENDING')
            THEN $3::bigint
            -- One count per state, each an equality the index descends to: with IN (...)
            -- the planner walked every entry of the batch (its finished records too) and
            -- filtered the state. Each count stops at the bound, so the sum is below the
            -- bound exactly when the open records are.
            ELSE (SELECT count(*) FROM (SELECT 1 FROM records r
                                        WHERE r.tenant_id = $1 AND r.batch_id = b.id
                                          AND r.state = 'QUEUED'
                                        LIMIT $3) AS queued)
               + (SELECT count(*) FROM (SELECT 1 FROM records r
                                        WHERE r.tenant_id = $1 AND r.batch_id = b.id
                                          AND r.state = 'ISSUED'
                                        LIMIT $3) AS issued)
       END AS remaining
FROM unnest($2::uuid[]) AS b(id)
"""


@dataclass
class RecordOutcome:
    record_id: uuid.UUID
    state: RecordState | None  # None: keep the state (a transient failure, to be retried)
    email_sent: bool
    sms_sent: bool
    code: str | None
    message: str | None
    attempt: int


async def write_outcomes(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    outcomes: Sequence[RecordOutcome],
    reminder_day_seconds: float = 86400.0,
) -> None:
    """Record each outcome; a record that fails for good fails through the lifecycle's
    writer (``credbatch.batches.lifecycle.fail_records``), after its sends are stamped.

    A record invited now in a batch with reminder days gets its reminder schedule, a "day"
    being ``reminder_day_seconds`` long."""
    if not outcomes:
        return
    # In record order, the order every writer of several records locks them in (the bounce
    # receiver's public_email_deliveries among them): the update locks its rows in the order
    # of the ids it is given, and two writers taking two records in opposite orders deadlock.
    outcomes = sorted(outcomes, key=lambda o: o.record_id)
    await conn.execute(
        WRITE_OUTCOMES,
        tenant_id,
        [o.record_id for o in outcomes],
        [None if o.state is RecordState.FAILED else o.state for o in outcomes],
        [o.email_sent for o in outcomes],
        [o.sms_sent for o in outcomes],
        [o.code for o in outcomes],
        [o.message for o in outcomes],
        [o.attempt for o in outcomes],
        reminder_day_seconds,
    )
    failures = [
        Failure(o.record_id, o.code or "", o.message or "", o.attempt)
        for o in outcomes
        if o.state is RecordState.FAILED
    ]
    await fail_records(conn, tenant_id, failures, from_states=(RecordState.ISSUED,))


async def nearly_finished(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, batch_ids: Sequence[uuid.UUID], bound: int
) -> set[uuid.UUID]:
    """The batches among ``batch_ids`` with fewer than ``bound`` records left to finish."""
    rows = await conn.fetch(REMAINING, tenant_id, list(batch_ids), bound)
    return {row["id"] for row in rows if row["remaining"] < bound}


async def stamp_sent(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    email_sent: Sequence[uuid.UUID],
    sms_sent: Sequence[uuid.UUID],
    sms_ids: Mapping[uuid.UUID, str] | None = None,
) -> None:
    """Record accepted sends (the first time of each stays), and the SMS provider's id of
    each message sent now (``sms_ids``, by record): its status callbacks name it."""
    if not email_sent and not sms_sent:
        return
    sms_ids = sms_ids or {}
    ids = [*email_sent, *sms_sent]
    mediums = [Medium.EMAIL.value] * len(email_sent) + [Medium.SMS.value] * len(sms_sent)
    message_ids = [None] * len(email_sent) + [sms_ids.get(r) for r in sms_sent]
    await conn.execute(STAMP_SENT, tenant_id, ids, mediums, message_ids)


async def cancelled_batches(
    conn: asyncpg.Connection | asyncpg.Pool, tenant_id: uuid.UUID, batch_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """The batches among ``batch_ids`` that are CANCELLED now."""
    rows = await conn.fetch(CANCELLED_BATCHES, tenant_id, list(batch_ids))
    return {row["id"] for row in rows}


async def stamp_reminders(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    sent: Sequence[tuple[uuid.UUID, Medium, int]],
) -> None:
    """Record accepted reminders: (record, medium, step) each."""
    if not sent:
        return
    ordered = sorted(sent, key=lambda s: (s[0], s[1].value))
    await conn.execute(
        STAMP_REMINDERS,
        tenant_id,
        [r for r, _, _ in ordered],
        [m.value for _, m, _ in ordered],
        [step for _, _, step in ordered],
    )
