"""A record's reminder schedule (``record_reminders``) as the worker and the relay move it on.

The schedule of an invited record is made by the worker's outcome write; the relay's claim
(``reminder_claim``) publishes its due step; here a step is finished (sent, or given up: by
the worker for good, or by the dead-letter consumer for a job that kept failing) and the
schedule of a record whose reminders are over is dropped.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from credbatch.schema.model import Medium

# The schedule moves on to the next day after the invitation, or ends (due_at NULL) after the
# last. Only the step the job sent moves on: a duplicate job of a step already finished changes
# nothing. A step counts as sent when any channel's message was accepted for it.
FINISH = """
UPDATE record_reminders m
SET step = m.step + 1,
    due_at = r.invited_at
             + make_interval(secs => b.reminder_days[m.step + 1] * $4::double precision),
    queued_at = NULL,
    sent = m.sent + CASE WHEN m.email_step >= m.step OR m.sms_step >= m.step THEN 1 ELSE 0 END
FROM unnest($2::uuid[], $3::int[]) AS u(id, step), records r, batches b
WHERE m.tenant_id = $1 AND m.record_id = u.id AND m.step = u.step
  AND r.tenant_id = m.tenant_id AND r.id = m.record_id
  AND b.tenant_id = m.tenant_id AND b.id = m.batch_id
"""

DROP = "DELETE FROM record_reminders WHERE tenant_id = $1 AND record_id = ANY($2::uuid[])"

# A step's channel is taken before its message is sent, and committed: a job delivered again
# (after a crash, or to a second worker) finds it taken and sends nothing on it, so no step
# reaches a holder twice on a channel. Locked in record order, as every writer of the table.
TAKE = """
WITH asked AS (
  SELECT u.id, u.step, u.email, u.sms, m.email_step, m.sms_step
  FROM unnest($2::uuid[], $3::int[], $4::boolean[], $5::boolean[]) AS u(id, step, email, sms)
  JOIN record_reminders m ON m.tenant_id = $1 AND m.record_id = u.id AND m.step = u.step
  ORDER BY u.id
  FOR UPDATE OF m
)
UPDATE record_reminders m
SET email_step = CASE WHEN a.email AND a.email_step < a.step THEN a.step ELSE m.email_step END,
    sms_step = CASE WHEN a.sms AND a.sms_step < a.step THEN a.step ELSE m.sms_step END
FROM asked a
WHERE m.tenant_id = $1 AND m.record_id = a.id
RETURNING m.record_id, a.email AND a.email_step < a.step AS email,
          a.sms AND a.sms_step < a.step AS sms
"""

# A channel taken whose message was not accepted, and is to be tried again, is given back.
GIVE_BACK = """
UPDATE record_reminders m
SET email_step = CASE WHEN u.email AND m.email_step = u.step THEN u.step - 1 ELSE m.email_step END,
    sms_step = CASE WHEN u.sms AND m.sms_step = u.step THEN u.step - 1 ELSE m.sms_step END
FROM unnest($2::uuid[], $3::int[], $4::boolean[], $5::boolean[]) AS u(id, step, email, sms)
WHERE m.tenant_id = $1 AND m.record_id = u.id AND m.step = u.step
"""

Channels = tuple[uuid.UUID, int, frozenset[Medium]]
"""A record, a step of its schedule, and channels of that step."""


async def take(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, asked: Sequence[Channels]
) -> dict[uuid.UUID, frozenset[Medium]]:
    """Take each record's channels of its step that no one took before: only those are sent.

    A channel taken and then lost with its worker is not sent again: a reminder is at most
    once per step and channel, never twice."""
    if not asked:
        return {}
    ordered = sorted(asked, key=lambda a: a[0])
    rows = await conn.fetch(TAKE, tenant_id, *_columns(ordered))
    return {
        row["record_id"]: frozenset(
            m for m, taken in ((Medium.EMAIL, row["email"]), (Medium.SMS, row["sms"])) if taken
        )
        for row in rows
    }


async def give_back(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, returned: Sequence[Channels]
) -> None:
    """Give back channels taken whose message was not accepted, for the job's next attempt."""
    if returned:
        await conn.execute(GIVE_BACK, tenant_id, *_columns(sorted(returned, key=lambda a: a[0])))


def _columns(
    channels: Sequence[Channels],
) -> tuple[list[uuid.UUID], list[int], list[bool], list[bool]]:
    return (
        [r for r, _, _ in channels],
        [step for _, step, _ in channels],
        [Medium.EMAIL in m for _, _, m in channels],
        [Medium.SMS in m for _, _, m in channels],
    )


async def finish_steps(
    conn: asyncpg.Connection,
    tenant_id: uuid.UUID,
    steps: Sequence[tuple[uuid.UUID, int]],
    day_seconds: float,
) -> int:
    """Finish each (record, step) that is still the record's next; returns how many moved."""
    if not steps:
        return 0
    ordered = sorted(steps)
    status: str = await conn.execute(
        FINISH, tenant_id, [r for r, _ in ordered], [s for _, s in ordered], day_seconds
    )
    return int(status.split()[-1])


async def drop(
    conn: asyncpg.Connection, tenant_id: uuid.UUID, record_ids: Sequence[uuid.UUID]
) -> None:
    """End the schedules of records whose reminders are over."""
    if record_ids:
        await conn.execute(DROP, tenant_id, sorted(record_ids))
