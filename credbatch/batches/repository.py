"""Reading batches with their progress; the lock order of everything that changes them.

The two batch-wide commands (cancel, retry) live in ``credbatch.batches.commands``.

Every function takes a connection inside ``credbatch.tenancy.tenant_transaction``: visibility
is row-level security's business alone, so a batch the caller may not see is simply absent.

Locking protocol (the safety contract of CancelBatch, RetryFailedRecords, the issuance worker,
the outbox relay and the sweeper): no record is issued or newly invited after a cancel
committed (beyond invitations already being sent), nobody deadlocks, and the control RPCs
never wait for a relay window or a worker's issue transaction.

Lock order: ``dispatch_tenants`` rows, then ``dispatch_batches`` rows, then ``records`` rows in
id order, then ``batches`` rows. A transaction that locks a batches row and then needs records
takes them only ``SKIP LOCKED`` (it never waits for one), and nobody waits for a records lock
while holding a dispatch row other than through the relay's own SKIP LOCKED claim.

* Outbox relay (``outbox_claim``): locks tenant and batch dispatch keys and
  PENDING records, all ``SKIP LOCKED``, never a record of a CANCELLED batch; holds them while
  it publishes and awaits confirms (up to the publish timeout), marks the confirmed records
  QUEUED and commits. It never locks a batches row.
* Triggers on records (``dispatch_note_pending``, ``records_count_changes``), run
  inside whichever statement changes records: the counts trigger only appends
  ``batch_count_deltas`` rows (locked by nobody else; ``batch_counts_fold`` locks only deltas
  and ``batch_counts`` rows). The dispatch trigger acts only when records become PENDING
  (upload, retry, sweeper): it upserts the batch's ``dispatch_batches`` row and takes the
  tenant's ``dispatch_tenants`` row ``FOR KEY SHARE``, after the statement's records locks. It
  can wait for a relay window holding that batch key, never the reverse (the relay takes no
  lock it waits for).
* Issuance worker, issue transaction (``workers.issuance.repository.LOCK_RECORDS``): locks the
  group's records in id order ``FOR UPDATE``, reading each record's batch state without
  locking the batch; skips records already INVITED, FAILED, CANCELLED or CLAIMED and records
  of a CANCELLED batch; issues the others (``ISSUED``); only then updates batches rows
  (QUEUED -> IN_PROGRESS).
* Worker, after the issue transaction: reads its batches' states again (no lock) and sends
  no invitation for a batch CANCELLED meanwhile (those records end CANCELLED); each accepted
  send is stamped in a short transaction that locks its records in id order; the outcome
  transaction updates only records (ISSUED ones change state); completion
  (``COMPLETE_BATCHES``) updates batches rows alone, in a transaction of its own.
* ``commands.mark_cancelled`` (CancelBatch, first transaction): updates the batches row alone and
  commits. From then on the relay claims none of its records and workers skip them, so
  whatever the rounds below have not yet reached is inert.
* ``commands.cancel_open_records`` (CancelBatch, following rounds): cancels the batch's PENDING and
  QUEUED records in id order ``FOR UPDATE SKIP LOCKED``. A record a relay window holds is
  either committed QUEUED (its job reaches a worker, which skips it: the batch is CANCELLED)
  and cancelled by a later round, or rolled back to PENDING and cancelled by a later round; a
  record a worker's issue transaction holds either became ISSUED before the cancel (its
  invitation goes out only if the worker read the batch before the cancel committed) or is
  skipped by that worker. Rounds stop after about a second; the sweeper (``sweep_stuck``)
  cancels what is left.
* ``commands.retry_failed`` (RetryFailedRecords): makes FAILED records PENDING in id order
  ``FOR UPDATE SKIP LOCKED`` (a redelivered job's issue transaction may hold one; it changes
  nothing for a FAILED record, so a later round takes it), then updates the batches row.
* Sweeper (``sweep_stuck``, relay process): locks stale QUEUED/ISSUED records and PENDING ones
  of cancelled batches ``SKIP LOCKED``; QUEUED ones becoming PENDING go through the dispatch
  trigger as above. It never locks a batches row.
* Dead-letter consumer (relay process): updates one record (QUEUED/ISSUED -> FAILED), commits,
  then runs ``COMPLETE_BATCHES`` in a transaction of its own, as the worker does.
"""

from __future__ import annotations

import uuid
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
    derive_state,
    estimate_completion,
)

# Throughput window of the completion estimate, and how many recent completions it reads at
# most (a bound on the work of one estimate however fast the workers are).
RATE_WINDOW = timedelta(seconds=60)
RATE_SAMPLE = 1000

# The batch and its counts per record state in one statement (one snapshot, so a fold that
# commits meanwhile is seen entirely or not at all): the sum of its folded rows in
# batch_counts and its deltas in batch_count_deltas, a few rows per batch
# however many records it has (credbatch.batches.counts folds the deltas every second).
_VIEW_SELECT = """
SELECT b.id, b.schema_id, b.schema_version, b.mediums, b.email_template_id,
       b.sms_template_id, b.certificate_template_id, b.creator, b.department, b.filename,
       b.claim_mode, b.total_records, b.state, b.created_at, b.updated_at, b.completed_at,
       b.cancelled_at,
       c.states, c.ns, c.last_update
FROM batches b
CROSS JOIN LATERAL (
  SELECT array_agg(s.state) FILTER (WHERE s.n <> 0) AS states,
         array_agg(s.n) FILTER (WHERE s.n <> 0) AS ns,
         max(s.last_update) AS last_update
  FROM (
    SELECT u.state, sum(u.n)::bigint AS n, max(u.last_update) AS last_update
    FROM (
      SELECT f.state, f.n, f.last_update
      FROM batch_counts f WHERE f.tenant_id = b.tenant_id AND f.batch_id = b.id
      UNION ALL
      SELECT d.state, d.n, d.last_update
      FROM batch_count_deltas d WHERE d.tenant_id = b.tenant_id AND d.batch_id = b.id
    ) u
    GROUP BY u.state
  ) s
) c
"""

_GET = _VIEW_SELECT + "WHERE b.tenant_id = app_tenant() AND b.id = $1"

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


def _to_view(row: asyncpg.Record) -> BatchView:
    counts = RecordCounts.from_mapping(dict(zip(row["states"] or (), row["ns"] or (), strict=True)))
    stored = BatchState(row["state"])
    state = derive_state(
        counts,
        row["total_records"],
        row["cancelled_at"] is not None,
        failed=stored is BatchState.FAILED,
        started=stored is not BatchState.QUEUED,
    )
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
    )


async def _with_estimates(conn: asyncpg.Connection, views: list[BatchView]) -> list[BatchView]:
    """The views, those still running with their completion estimate (two statements at most
    for a whole page, however many of its batches are running)."""
    running = [v for v in views if v.state in (BatchState.QUEUED, BatchState.IN_PROGRESS)]
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
    return (await _with_estimates(conn, [_to_view(row)]))[0]


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


async def list_batches(
    conn: asyncpg.Connection,
    batch_filter: BatchFilter,
    after: PagePosition | None,
    limit: int,
) -> list[BatchView]:
    """Visible batches matching the filter, newest first, strictly after ``after``.

    Keyset paging on (created_at, id) over batches_created_idx: batches inserted while a
    client pages land before its position and never shift the pages it has not read yet.
    """
    where = ["b.tenant_id = app_tenant()"]
    args: list[Any] = []
    _filter_sql(where, args, batch_filter)
    if after is not None:
        args.extend((after.create_time, after.id))
        where.append(f"(b.created_at, b.id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    sql = (
        _VIEW_SELECT
        + "WHERE "
        + " AND ".join(where)
        + f" ORDER BY b.created_at DESC, b.id DESC LIMIT ${len(args)}"
    )
    rows = await conn.fetch(sql, *args)
    views = [_to_view(row) for row in rows]
    return await _with_estimates(conn, views)
