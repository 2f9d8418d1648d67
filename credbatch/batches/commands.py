"""CancelBatch and RetryFailedRecords: the two batch-wide commands, in short rounds.

Every function takes a connection inside ``credbatch.tenancy.tenant_transaction`` (RLS decides
what the caller may change) and is one step of a command; the lock order they keep with the
relay, the workers and the triggers is in ``docs/architecture.md`` ("Lock order").
"""

from __future__ import annotations

import uuid

import asyncpg

from credbatch.batches import resend


async def mark_cancelled(conn: asyncpg.Connection, batch_id: uuid.UUID) -> bool:
    """Mark the batch CANCELLED (first step of a cancel); whether this call cancelled it.

    Run in a transaction of its own that writes nothing else: from its commit on, the relay
    claims no record of the batch and workers skip its records (see the module docstring).
    """
    status: str = await conn.execute(
        """
        UPDATE batches
        SET state = 'CANCELLED', cancelled_at = now(), completed_at = coalesce(completed_at, now()),
            updated_at = now()
        WHERE tenant_id = app_tenant() AND id = $1 AND cancelled_at IS NULL
        """,
        batch_id,
    )
    return status != "UPDATE 0"


async def cancel_open_records(
    conn: asyncpg.Connection, batch_id: uuid.UUID, limit: int | None = None
) -> int:
    """Cancel up to ``limit`` (None: all) PENDING/QUEUED records of the batch nobody holds.

    Returns the number cancelled. Records held by a relay window or a worker's issue
    transaction are skipped: ``open_records_left`` tells whether to call again, in a new
    transaction.
    """
    # SKIP LOCKED: never wait for the relay (which holds claimed records until its publish
    # is confirmed) or a worker. The UPDATE changes only rows this SELECT locked, in id order.
    cancelled: int = await conn.fetchval(
        """
        WITH open AS (
          SELECT id FROM records
          WHERE tenant_id = app_tenant() AND batch_id = $1 AND state IN ('PENDING', 'QUEUED')
          ORDER BY id
          LIMIT $2
          FOR UPDATE SKIP LOCKED
        ), done AS (
          UPDATE records r SET state = 'CANCELLED', updated_at = now()
          FROM open o
          WHERE r.tenant_id = app_tenant() AND r.id = o.id
          RETURNING 1
        )
        SELECT count(*) FROM done
        """,
        batch_id,
        limit,
    )
    return cancelled


async def open_records_left(conn: asyncpg.Connection, batch_id: uuid.UUID) -> bool:
    """Whether the batch still has PENDING or QUEUED records (as last committed)."""
    left: bool = await conn.fetchval(
        """
        SELECT EXISTS (SELECT 1 FROM records
                       WHERE tenant_id = app_tenant() AND batch_id = $1
                         AND state IN ('PENDING', 'QUEUED'))
        """,
        batch_id,
    )
    return left


async def retry_failed(
    conn: asyncpg.Connection,
    batch_id: uuid.UUID,
    limit: int | None = None,
    *,
    claim_ttl: float | None = None,
) -> int:
    """Put up to ``limit`` (None: all) FAILED records of the batch back in the outbox.

    They become PENDING with a fresh attempt and no error, so the outbox relay publishes a new
    job for each; a record whose credential already exists keeps it (the worker then only
    sends the invitation again). The batch is IN_PROGRESS again. Records a worker holds (a
    redelivered job's issue transaction locks every record of its group, whatever its state)
    are skipped, not waited for: ``failed_records_left`` tells whether to call again, in a
    new transaction. Returns the number retried; a cancelled batch is left alone.

    With ``claim_ttl``, the claim links of retried records that hold a credential work for
    that long from now (never less than before): an invitation that failed long ago must not
    go out with a link already run out (the expiry pass would make it EXPIRED at once).
    """
    retried_ids: list[uuid.UUID] = await conn.fetchval(
        """
        WITH failed AS (
          SELECT r.id FROM records r
          WHERE r.tenant_id = app_tenant() AND r.batch_id = $1 AND r.state = 'FAILED'
            -- The relay never publishes jobs of a cancelled batch: nothing to retry there.
            AND EXISTS (SELECT 1 FROM batches b
                        WHERE b.tenant_id = app_tenant() AND b.id = $1 AND b.cancelled_at IS NULL)
          ORDER BY r.id
          LIMIT $2
          FOR UPDATE OF r SKIP LOCKED
        ), done AS (
          UPDATE records r
          SET state = 'PENDING', attempt = 0, error_code = NULL, error_message = NULL,
              updated_at = now()
          FROM failed f
          WHERE r.tenant_id = app_tenant() AND r.id = f.id
          RETURNING r.id
        )
        SELECT coalesce(array_agg(id), '{}') FROM done
        """,
        batch_id,
        limit,
    )
    retried = len(retried_ids)
    if retried and claim_ttl is not None:
        await resend.renew_links(conn, retried_ids, claim_ttl)
    if retried:
        await conn.execute(
            """
            UPDATE batches SET state = 'IN_PROGRESS', completed_at = NULL, updated_at = now()
            WHERE tenant_id = app_tenant() AND id = $1 AND cancelled_at IS NULL
            """,
            batch_id,
        )
    return retried


async def failed_records_left(conn: asyncpg.Connection, batch_id: uuid.UUID) -> bool:
    """Whether the batch, not cancelled, still has FAILED records (as last committed)."""
    left: bool = await conn.fetchval(
        """
        SELECT EXISTS (SELECT 1 FROM records r
                       WHERE r.tenant_id = app_tenant() AND r.batch_id = $1
                         AND r.state = 'FAILED')
           AND EXISTS (SELECT 1 FROM batches b
                       WHERE b.tenant_id = app_tenant() AND b.id = $1 AND b.cancelled_at IS NULL)
        """,
        batch_id,
    )
    return left
