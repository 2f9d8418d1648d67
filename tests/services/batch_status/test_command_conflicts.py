"""CancelBatch chosen as a deadlock's victim runs its transaction again and succeeds."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from credbatch.batches.model import BatchState
from credbatch.tenancy import tenant_transaction, user_scope
from services.batch_status.status import BatchStatus
from tests.fixtures.batches import insert_batch

_LOCK = "SELECT 1 FROM records WHERE tenant_id = $1 AND id = $2 FOR UPDATE"


async def _blocked(owner_pool: asyncpg.Pool, pid: int) -> None:
    for _ in range(500):
        if await owner_pool.fetchval("SELECT cardinality(pg_blocking_pids($1)) > 0", pid):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"backend {pid} never waited for a lock")


async def test_cancel_survives_a_deadlock(app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    admin = user_scope(tenant, "alice", ["org_admin"], [])
    async with tenant_transaction(app_pool, admin) as conn:
        arranged = await insert_batch(conn, tenant, creator="alice", states=("QUEUED", "QUEUED"))
    batch_id = arranged.batch_id
    first, last = sorted(arranged.record_ids)
    status = BatchStatus(app_pool, "http://127.0.0.1:8000")

    # Another transaction, locking against the cancel's id order: the last record first, then
    # the first one once the cancel holds it and waits for the last. Its deadlock_timeout is
    # long, so the server picks the cancel (checked after the default 1 s) as the victim.
    async with owner_pool.acquire() as other:
        transaction = other.transaction()
        await transaction.start()
        await other.execute("SET LOCAL deadlock_timeout = '30s'")
        await other.execute(_LOCK, tenant, last)
        cancel = asyncio.ensure_future(status.cancel(admin, batch_id))
        cancel_pid = await _wait_for_cancel(owner_pool)
        await _blocked(owner_pool, cancel_pid)
        await other.execute(_LOCK, tenant, first)  # the cancel's first run is rolled back
        await transaction.rollback()
    view = await cancel
    assert view.state is BatchState.CANCELLED
    assert view.counts.cancelled == 2


async def _wait_for_cancel(owner_pool: asyncpg.Pool) -> int:
    # The application role's backend in this database that waits for a lock on records.
    query = """
    SELECT pid FROM pg_stat_activity
    WHERE datname = current_database() AND usename = 'credbatch_app'
      AND wait_event_type = 'Lock' AND query LIKE '%records%'
    """
    for _ in range(500):
        pid = await owner_pool.fetchval(query)
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.01)
    raise AssertionError("the cancel never waited for the record lock")
