"""Reading batches with their progress, and the two batch-wide commands (retry, cancel).

Every function takes a connection inside ``credbatch.tenancy.tenant_transaction``: visibility
is row-level security's business alone, so a batch the caller may not see is simply absent.

Locking protocol (the safety contract of CancelBatch, RetryFailedRecords, the issuance worker
and the outbox relay): no record is issued after a cancel committed, a retry never races a
worker, and no two of them can deadlock. Lock order: ``records`` rows in id order, then
``batches`` rows; nobody takes a records lock while holding a batches lock.

* Outbox relay (``outbox_claim``): locks PENDING records with ``FOR UPDATE SKIP LOCKED`` (it
  never waits for a lock), publishes their jobs and marks them QUEUED before committing. It
  never locks a batches row.
* Issuance worker, issue transaction (``workers.issuance.repository.LOCK_RECORDS``): locks the
  whole group's records, in id order, with ``FOR UPDATE OF r``, reading each record's batch
  state without locking the batch. It skips (changes nothing for) records already INVITED,
  FAILED, CANCELLED or CLAIMED and records of a CANCELLED batch; the others get their
  credential and ``state = 'ISSUED'`` in that transaction. Only then does it update batches
  rows (QUEUED -> IN_PROGRESS), after every record lock.
* Invitations are sent outside any transaction. The worker's outcome transaction then updates
  the records it issued (ISSUED, a state neither cancel nor retry touches) and reads, without
  locking, how many records of their batches are open; a separate short transaction completes
  batches by updating batches rows alone.
* ``cancel_batch``: locks the batch's PENDING and QUEUED records in id order
  (``SELECT ... ORDER BY id FOR UPDATE``), waiting for a worker or relay holding one; marks
  them CANCELLED; then updates the batch row. A worker that locked a record first commits its
  ISSUED state, and READ COMMITTED re-checks the cancel's WHERE against that new row version,
  so the record is left ISSUED (its invitation still goes out); a worker that comes later sees
  CANCELLED and skips. A relay that claimed a record first commits it QUEUED, and the cancel
  then cancels it. Either way nothing is issued after the cancel commits.
* ``retry_failed``: locks the batch's FAILED records in id order (a redelivered job's issue
  transaction may hold one: the worker locks every record of its group, whatever its state),
  makes them PENDING, then updates the batch row.
* The ``records_count_*`` triggers (migration 0600) run inside whichever statement changes
  records and only append new rows to ``batch_count_deltas``: no row anyone else locks.
  ``batch_counts_fold`` locks only delta rows (nobody else ever locks one) and
  ``batch_counts`` rows (written by folds alone).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

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
# batch_counts and its deltas in batch_count_deltas (migration 0600), a few rows per batch
# however many records it has (credbatch.batches.counts folds the deltas every second).
_VIEW_SELECT = """
SELECT b.id, b.schema_id, b.schema_version, b.mediums, b.email_template_id,
       b.sms_template_id, b.certificate_template_id, b.creator, b.department, b.filename,
       b.total_records, b.state, b.created_at, b.updated_at, b.completed_at, b.cancelled_at,
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


async def cancel_batch(conn: asyncpg.Connection, batch_id: uuid.UUID) -> int:
    """Cancel the batch's unprocessed records and the batch; the number of records cancelled.

    Idempotent (a second call changes nothing). Records first, then the batch row: the lock
    order the worker uses too (see the module docstring). Callers leave a batch that already
    finished as it is rather than calling this.
    """
    # In id order, as the worker locks them: an UPDATE locks in whatever order it scans, and
    # could hold a record a worker wants while waiting for one the worker holds (a deadlock).
    await conn.execute(
        """
        SELECT 1 FROM records
        WHERE tenant_id = app_tenant() AND batch_id = $1 AND state IN ('PENDING', 'QUEUED')
        ORDER BY id
        FOR UPDATE
        """,
        batch_id,
    )
    cancelled: int = await conn.fetchval(
        """
        WITH done AS (
          UPDATE records SET state = 'CANCELLED', updated_at = now()
          WHERE tenant_id = app_tenant() AND batch_id = $1 AND state IN ('PENDING', 'QUEUED')
          RETURNING 1
        )
        SELECT count(*) FROM done
        """,
        batch_id,
    )
    await conn.execute(
        """
        UPDATE batches
        SET state = 'CANCELLED', cancelled_at = now(), completed_at = coalesce(completed_at, now()),
            updated_at = now()
        WHERE tenant_id = app_tenant() AND id = $1 AND cancelled_at IS NULL
        """,
        batch_id,
    )
    return cancelled


async def retry_failed(conn: asyncpg.Connection, batch_id: uuid.UUID) -> int:
    """Put the batch's FAILED records back in the outbox; the number of records retried.

    They become PENDING with a fresh attempt and no error, so the outbox relay publishes a new
    job for each; a record whose credential already exists keeps it (the worker then only
    sends the invitation again). The batch is IN_PROGRESS again. Idempotent: with no FAILED
    record left nothing changes.
    """
    # In id order, as the worker locks them (a redelivered job may hold a FAILED record): see
    # cancel_batch.
    await conn.execute(
        """
        SELECT 1 FROM records
        WHERE tenant_id = app_tenant() AND batch_id = $1 AND state = 'FAILED'
        ORDER BY id
        FOR UPDATE
        """,
        batch_id,
    )
    retried: int = await conn.fetchval(
        """
        WITH done AS (
          UPDATE records
          SET state = 'PENDING', attempt = 0, error_code = NULL, error_message = NULL,
              updated_at = now()
          WHERE tenant_id = app_tenant() AND batch_id = $1 AND state = 'FAILED'
            -- The relay never publishes jobs of a cancelled batch: nothing to retry there.
            AND EXISTS (SELECT 1 FROM batches b
                        WHERE b.tenant_id = app_tenant() AND b.id = $1 AND b.cancelled_at IS NULL)
          RETURNING 1
        )
        SELECT count(*) FROM done
        """,
        batch_id,
    )
    if retried:
        await conn.execute(
            """
            UPDATE batches SET state = 'IN_PROGRESS', completed_at = NULL, updated_at = now()
            WHERE tenant_id = app_tenant() AND id = $1 AND cancelled_at IS NULL
            """,
            batch_id,
        )
    return retried
