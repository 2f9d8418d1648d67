"""Real database failures, provoked on the real server: conflicts, lost connections, cancels.

Each helper makes PostgreSQL itself raise the error (no fake exceptions), deterministically:
the interleavings are forced with a second connection, never left to timing.
"""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.batches import insert_batch

# Outside the public schema, where every table is a tenant table or explicitly owner-only.
PROBE_TABLE = "test_probes.conflict_probe"


async def probe_row(owner_pool: asyncpg.Pool) -> uuid.UUID:
    """A fresh row of the probe table (created on first use), value 0."""
    await owner_pool.execute(
        "CREATE SCHEMA IF NOT EXISTS test_probes;"
        f" CREATE TABLE IF NOT EXISTS {PROBE_TABLE} (id uuid PRIMARY KEY, n int NOT NULL)"
    )
    row_id = uuid.uuid4()
    await owner_pool.execute(f"INSERT INTO {PROBE_TABLE} (id, n) VALUES ($1, 0)", row_id)
    return row_id


async def probe_value(owner_pool: asyncpg.Pool, row_id: uuid.UUID) -> int:
    value: int = await owner_pool.fetchval(f"SELECT n FROM {PROBE_TABLE} WHERE id = $1", row_id)
    return value


async def increment(owner_pool: asyncpg.Pool, row_id: uuid.UUID, *, interfere: bool) -> None:
    """Add 1 to the probe row in a REPEATABLE READ transaction.

    With ``interfere`` another connection commits its own update of the row after this
    transaction took its snapshot, so this update fails with 40001 serialization_failure.
    """
    async with owner_pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        await conn.fetchval(f"SELECT n FROM {PROBE_TABLE} WHERE id = $1", row_id)
        if interfere:
            await owner_pool.execute(f"UPDATE {PROBE_TABLE} SET n = n + 100 WHERE id = $1", row_id)
        await conn.execute(f"UPDATE {PROBE_TABLE} SET n = n + 1 WHERE id = $1", row_id)


async def two_records(app_pool: asyncpg.Pool, tenant: uuid.UUID) -> list[uuid.UUID]:
    """Two records of a new batch of ``tenant`` (service scope may lock them)."""
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        arranged = await insert_batch(
            conn, tenant, creator="system:worker", states=("QUEUED", "QUEUED")
        )
    return list(arranged.record_ids)


_LOCK = "SELECT 1 FROM records WHERE tenant_id = $1 AND id = $2 FOR UPDATE"


async def _waiting_for_lock(owner_pool: asyncpg.Pool, pid: int) -> None:
    for _ in range(500):
        if await owner_pool.fetchval("SELECT cardinality(pg_blocking_pids($1)) > 0", pid):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"backend {pid} never waited for a lock")


async def deadlock(
    conn: asyncpg.Connection,
    owner_pool: asyncpg.Pool,
    tenant: uuid.UUID,
    records: list[uuid.UUID],
) -> None:
    """Make the transaction on ``conn`` the victim of a real deadlock (40P01).

    ``conn`` locks the first record; another connection locks the second and waits for the
    first; ``conn`` then asks for the second. The other connection's deadlock_timeout is long,
    so the server's check runs in ``conn``'s backend first and picks ``conn`` as the victim;
    the other transaction then gets its locks and rolls back.
    """
    first, second = records
    await conn.execute(_LOCK, tenant, first)
    async with owner_pool.acquire() as other:
        transaction = other.transaction()
        await transaction.start()
        try:
            await other.execute("SET LOCAL deadlock_timeout = '30s'")
            pid = await other.fetchval("SELECT pg_backend_pid()")
            await other.execute(_LOCK, tenant, second)
            waiting = asyncio.ensure_future(other.execute(_LOCK, tenant, first))
            try:
                await _waiting_for_lock(owner_pool, pid)
                await conn.execute(_LOCK, tenant, second)  # raises DeadlockDetectedError
            finally:
                # Our transaction is aborted (or the test failed): the other one gets its lock.
                await asyncio.wait_for(asyncio.shield(waiting), 10)
        finally:
            await transaction.rollback()


async def running(owner_pool: asyncpg.Pool, pid: int) -> None:
    """Wait until backend ``pid`` runs a statement."""
    for _ in range(500):
        state = await owner_pool.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)
        if state == "active":
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"backend {pid} never ran a statement")


async def terminate(owner_pool: asyncpg.Pool, pid: int) -> None:
    """Terminate backend ``pid`` (SQLSTATE 57P01 admin_shutdown); returns once it is gone."""
    assert await owner_pool.fetchval("SELECT pg_terminate_backend($1, 5000)", pid)


async def cancel(owner_pool: asyncpg.Pool, pid: int) -> None:
    """Cancel the statement backend ``pid`` runs (SQLSTATE 57014 query_canceled)."""
    assert await owner_pool.fetchval("SELECT pg_cancel_backend($1)", pid)
