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
