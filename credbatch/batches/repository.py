"""Reading batches with their progress.

The two batch-wide commands (cancel, retry) live in ``credbatch.batches.commands``.

Every function takes a connection inside ``credbatch.tenancy.tenant_transaction``: visibility
is row-level security's business alone, so a batch the caller may not see is simply absent.

The lock order these readers, the batch commands, the relay, the sweeper and the workers keep
is in ``docs/architecture.md`` (section "Lock order"), with the triggers on ``records``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from credbatch.batches.claim_mode import ClaimMode
from credbatch.batches.model import (
    TERMINAL_BATCH_STATES,
    BatchFilter,
    BatchState,
    BatchView,
    PagePosition,
    RecordCounts,
    estimate_completion,
)

# Throughput window of the completion estimate, and how many recent completions it reads at
# most (a bound on the work of one estimate however fast the workers are).
RATE_WINDOW = timedelta(seconds=60)
RATE_SAMPLE = 1000

# The batch, its counts per record state and the state they give it, in one statement (one
# snapshot, so a fold that commits meanwhile is seen entirely or not at all). batch_counts_of
# is inlined by the planner; batch_state_of is the one rule for a batch's state, the same
# that batches_complete stores when a batch finishes. The delivered and bounced figures come
# from the same few count rows, never from the records: a read costs the same for a batch of
# ten records and one of a million, however long the history.
_VIEW_COLUMNS = """
SELECT b.id, b.schema_id, b.schema_version, b.mediums, b.email_template_id,
       b.sms_template_id, b.certificate_template_id, b.creator, b.department, b.filename,
       b.claim_mode, b.total_records, b.state, b.created_at, b.updated_at, b.completed_at,
       b.cancelled_at, b.reminder_days, b.reminder_email_template_id, b.reminder_sms_template_id,
       c.states, c.ns, c.last_update,
       batch_state_of(b.state, b.cancelled_at IS NOT NULL, b.total_records, c.states, c.ns)
         AS derived_state,
       c.delivered, c.bounced
"""
_COUNTS = "CROSS JOIN LATERAL batch_counts_of(b.tenant_id, b.id) c\n"
_GET = (
    _VIEW_COLUMNS + "FROM batches b\n" + _COUNTS + "WHERE b.tenant_id = app_tenant() AND b.id = $1"
)

# Reminders sent to a batch's holders, for GetBatch alone (a list would sum every schedule row
# of every batch on the page): record_reminders_batch_idx holds the batch's rows.
_REMINDERS_SENT = """
SELECT coalesce(sum(sent), 0)::bigint FROM record_reminders
WHERE tenant_id = app_tenant() AND batch_id = $1
"""

# The most recent completions (terminal successes and failures) of each batch of $1, newest
# first, at most RATE_SAMPLE of them and none older than the batch's bound in $2: each branch
# is a short backward range scan of records_progress_idx. One statement for a whole page.
_RECENT = f"""
SELECT v.id, c.n, c.since
FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, after)
CROSS JOIN LATERAL (
  SELECT count(*) AS n, min(u) AS since FROM (
    SELECT u FROM (
      (SELECT updated_at AS u FROM records
       WHERE tenant_id = app_tenant() AND batch_id = v.id AND state = 'INVITED'
         AND updated_at > v.after
       ORDER BY updated_at DESC LIMIT {RATE_SAMPLE})
      UNION ALL
      (SELECT updated_at FROM records
       WHERE tenant_id = app_tenant() AND batch_id = v.id AND state = 'CLAIMED'
         AND updated_at > v.after
       ORDER BY updated_at DESC LIMIT {RATE_SAMPLE})
      UNION ALL
      (SELECT updated_at FROM records
       WHERE tenant_id = app_tenant() AND batch_id = v.id AND state = 'FAILED'
         AND updated_at > v.after
       ORDER BY updated_at DESC LIMIT {RATE_SAMPLE})
    ) recent
    ORDER BY u DESC
    LIMIT {RATE_SAMPLE}
  ) sample
) c
"""

_COMPARATORS = frozenset({"<", "<=", ">", ">="})


def _opt_uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(str(value))


def _to_view(row: Mapping[str, Any], reminders_sent: int = 0) -> BatchView:
    counts = replace(
        RecordCounts.from_mapping(dict(zip(row["states"] or (), row["ns"] or (), strict=True))),
        delivered=row["delivered"],
        bounced=row["bounced"],
    )
    state = BatchState(row["derived_state"])
    last_update: datetime | None = row["last_update"]
    update_time: datetime = row["updated_at"]
    if last_update is not None and last_update > update_time:
        update_time = last_update
    complete_time: datetime | None = None
    if state in TERMINAL_BATCH_STATES:
        # Workers stamp completed_at when they see the batch finish; until then (or when a
        # reader is faster) the last record change is when it finished.
        complete_time = row["completed_at"] or row["cancelled_at"] or update_time
    return BatchView(
        id=row["id"],
        state=state,
        schema_id=row["schema_id"],
        schema_version=row["schema_version"],
        mediums=tuple(row["mediums"]),
        email_template_id=_opt_uuid(row["email_template_id"]),
        sms_template_id=_opt_uuid(row["sms_template_id"]),
        certificate_template_id=_opt_uuid(row["certificate_template_id"]),
        creator=row["creator"],
        department=row["department"],
        filename=row["filename"],
        claim_mode=ClaimMode(row["claim_mode"]),
        total=row["total_records"],
        counts=counts,
        create_time=row["created_at"],
        update_time=update_time,
        complete_time=complete_time,
        cancel_time=row["cancelled_at"],
        reminder_days=tuple(row["reminder_days"] or ()),
        reminder_email_template_id=_opt_uuid(row["reminder_email_template_id"]),
        reminder_sms_template_id=_opt_uuid(row["reminder_sms_template_id"]),
        reminders_sent=reminders_sent,
    )


async def _with_estimates(conn: asyncpg.Connection, views: list[BatchView]) -> list[BatchView]:
    """The views, those still running with their completion estimate (two statements at most
    for a whole page, however many of its batches are running)."""
    # A batch with no record INVITED, CLAIMED or FAILED has no recent completion to read
    # (_RECENT counts only those states): no estimate, without the two statements. A new
    # batch, the one an upload returns, is such a batch.
    running = [
        v
        for v in views
        if v.state in (BatchState.QUEUED, BatchState.IN_PROGRESS)
        and v.counts.invited + v.counts.claimed + v.counts.failed > 0
    ]
    if not running:
        return views
    now: datetime = await conn.fetchval("SELECT clock_timestamp()")
    windows = {
        v.id: min(RATE_WINDOW, max(now - v.create_time, timedelta(seconds=1))) for v in running
    }
    rows = await conn.fetch(
        _RECENT, [v.id for v in running], [now - windows[v.id] for v in running]
    )
    recent = {row["id"]: (row["n"], row["since"]) for row in rows}
    return [
        _estimated(view, now, windows[view.id], *recent[view.id]) if view.id in windows else view
        for view in views
    ]


def _estimated(
    view: BatchView, now: datetime, window: timedelta, finished: int, since: datetime | None
) -> BatchView:
    if finished >= RATE_SAMPLE and since is not None:
        # The sample is full: the rate is its size over the time it spans.
        window = max(now - since, timedelta(milliseconds=1))
    remaining = view.total - view.counts.terminal
    estimate, rate = estimate_completion(now, remaining, finished, window)
    return BatchView(
        **{
            **view.__dict__,
            "estimated_complete_time": estimate,
            "recent_rate": rate,
        }
    )


async def get_batch(conn: asyncpg.Connection, batch_id: uuid.UUID) -> BatchView | None:
    """The batch with its progress and completion estimate; None when absent or invisible."""
    row = await conn.fetchrow(_GET, batch_id)
    if row is None:
        return None
    view = _to_view(row)
    if view.reminder_days:
        sent = await conn.fetchval(_REMINDERS_SENT, batch_id)
        view = replace(view, reminders_sent=sent)
    return (await _with_estimates(conn, [view]))[0]


def batch_view_sql(batch_id: str) -> str:
    """What ``get_batch`` reads, as one ``SELECT`` to join into another statement (a round
    trip fewer): the batch whose id is in parameter ``batch_id``, with its reminders sent.
    ``batch_view`` makes the view of its row."""
    return (
        _VIEW_COLUMNS
        + ", (SELECT coalesce(sum(r.sent), 0)::bigint FROM record_reminders r"
        + " WHERE r.tenant_id = app_tenant() AND r.batch_id = b.id) AS reminders_sent\n"
        + "FROM batches b\n"
        + _COUNTS
        + f"WHERE b.tenant_id = app_tenant() AND b.id = {batch_id}::uuid"
    )


async def batch_view(conn: asyncpg.Connection, row: Mapping[str, Any]) -> BatchView | None:
    """The view ``get_batch`` gives, of a row of ``batch_view_sql`` (None: its ``id`` is None,
    the batch was absent or invisible). Reads nothing more unless the batch has recent
    completions to estimate from (a new batch has none)."""
    if row["id"] is None:
        return None
    view = _to_view(row, row["reminders_sent"])
    return (await _with_estimates(conn, [view]))[0]


def _filter_sql(where: list[str], args: list[Any], batch_filter: BatchFilter) -> None:
    def param(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    # Every condition is its own predicate: `state = A AND state = B` matches nothing, as
    # AIP-160 says it should.
    for state in batch_filter.states:
        where.append(f"b.state = {param(state.value)}")
    for creator in batch_filter.creators:
        where.append(f"b.creator = {param(creator)}")
    for department in batch_filter.departments:
        where.append(f"b.department = {param(department)}")
    for schema_id in batch_filter.schema_ids:
        where.append(f"b.schema_id = {param(schema_id)}")
    for bound in batch_filter.create_time:
        if bound.op not in _COMPARATORS:
            raise ValueError(f"unsupported create_time comparator {bound.op!r}")
        where.append(f"b.created_at {bound.op} {param(bound.at)}")


def list_sql(
    batch_filter: BatchFilter, after: PagePosition | None, limit: int
) -> tuple[str, list[Any]]:
    """The statement of ``list_batches`` and its arguments."""
    where = ["b.tenant_id = app_tenant()"]
    args: list[Any] = []
    _filter_sql(where, args, batch_filter)
    if after is not None:
        args.extend((after.create_time, after.id))
        where.append(f"(b.created_at, b.id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    sql = (
        _VIEW_COLUMNS
        + "FROM (SELECT * FROM batches b WHERE "
        + " AND ".join(where)
        + f" ORDER BY b.created_at DESC, b.id DESC LIMIT ${len(args)}) b\n"
        + _COUNTS
        + "ORDER BY b.created_at DESC, b.id DESC"
    )
    return sql, args


async def list_batches(
    conn: asyncpg.Connection,
    batch_filter: BatchFilter,
    after: PagePosition | None,
    limit: int,
) -> list[BatchView]:
    """Visible batches matching the filter, newest first, strictly after ``after``.

    Keyset paging on (created_at, id) over batches_created_idx: batches inserted while a
    client pages land before its position and never shift the pages it has not read yet.
    The page is chosen first and only its batches' counts are read: with the counts joined
    before the ORDER BY ... LIMIT, the planner (which row-level security leaves estimating a
    single visible batch) read the counts of every batch of the tenant, then sorted, so a
    page cost grew with the tenant's whole history.
    """
    sql, args = list_sql(batch_filter, after, limit)
    rows = await conn.fetch(sql, *args)
    views = [_to_view(row) for row in rows]
    return await _with_estimates(conn, views)
