"""Fair-dispatch test support: a database of its own, outbox rows in bulk, claim helpers.

The claim serves every tenant of its database, so fairness can only be judged where no other
test leaves PENDING records: these tests get a freshly migrated database per module.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg
import pytest_asyncio

from credbatch.config import Settings
from credbatch.db.migrate import ensure_database, migrate
from credbatch.db.pool import create_pool
from tests.fixtures.database import drop_database, with_database
from workers.relay.relay import DispatchLimits

NO_LIMITS = DispatchLimits()
CLAIM = """
SELECT tenant_id, batch_id, record_id, attempt, traceparent
FROM outbox_claim($1, $2, $3, $4, $5, $6, $7)
"""


@dataclass(frozen=True)
class FairDb:
    settings: Settings
    owner: asyncpg.Pool
    app: asyncpg.Pool


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fair_db(db_settings: Settings) -> AsyncIterator[FairDb]:
    """A migrated database private to one test module, with owner and application pools."""
    name = f"credbatch_fair_{secrets.token_hex(6)}"
    owner_url = with_database(db_settings.database_url, name)
    await ensure_database(owner_url)
    try:
        await migrate(owner_url)
        settings = db_settings.with_overrides(
            database_url=owner_url,
            app_database_url=with_database(db_settings.app_database_url, name),
        )
        owner = await create_pool(settings.database_url, max_size=4)
        app = await create_pool(settings.app_database_url, max_size=6)
        try:
            yield FairDb(settings, owner, app)
        finally:
            await app.close()
            await owner.close()
    finally:
        await drop_database(owner_url)


async def add_pending_batch(
    owner: asyncpg.Pool,
    tenant_id: uuid.UUID,
    rows: int,
    *,
    mediums: Sequence[str] = ("EMAIL",),
    state: str = "QUEUED",
) -> uuid.UUID:
    """A batch of ``rows`` PENDING records (one INSERT, as an upload group does)."""
    schema_id, batch_id = uuid.uuid4(), uuid.uuid4()
    async with owner.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING", tenant_id)
        await conn.execute(
            "INSERT INTO credential_schemas (tenant_id, id, display_name, created_by)"
            " VALUES ($1, $2, $3, 'test')",
            tenant_id,
            schema_id,
            f"fair {schema_id}",
        )
        await conn.execute(
            "INSERT INTO credential_schema_versions (tenant_id, schema_id, version, attributes,"
            " requires_certificate, created_by) VALUES ($1, $2, 1, '[]', false, 'test')",
            tenant_id,
            schema_id,
        )
        await conn.execute(
            "INSERT INTO batches (tenant_id, id, schema_id, schema_version, mediums, creator,"
            " department, total_records, state) VALUES ($1, $2, $3, 1, $4, 'test', 'default',"
            " $5, $6)",
            tenant_id,
            batch_id,
            schema_id,
            list(mediums),
            rows,
            state,
        )
        await conn.execute(
            "INSERT INTO records (tenant_id, id, batch_id, row_number, email, phone)"
            " SELECT $1, gen_random_uuid(), $2, g, 'h' || g || '@example.test',"
            " CASE WHEN 'SMS' = ANY($4::text[]) THEN '+15005550006' END"
            " FROM generate_series(1, $3) AS g",
            tenant_id,
            batch_id,
            rows,
            list(mediums),
        )
    return batch_id


async def claim(
    conn: asyncpg.Connection, limit: int, limits: DispatchLimits = NO_LIMITS
) -> list[asyncpg.Record]:
    """One outbox_claim on ``conn`` (inside the caller's transaction)."""
    return list(
        await conn.fetch(
            CLAIM,
            limit,
            limits.max_in_flight,
            limits.tenant_in_flight,
            limits.batch_in_flight,
            limits.emails_per_second,
            limits.sms_per_second,
            limits.quantum,
        )
    )


async def claim_and_queue(
    pool: asyncpg.Pool, limit: int, limits: DispatchLimits = NO_LIMITS
) -> list[asyncpg.Record]:
    """A relay window without the broker: claim, mark QUEUED, commit."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await claim(conn, limit, limits)
        if rows:
            await conn.fetchval(
                "SELECT outbox_mark_queued($1::uuid[], $2::uuid[])",
                [r["tenant_id"] for r in rows],
                [r["record_id"] for r in rows],
            )
    return rows


async def finish(owner: asyncpg.Pool, batch_id: uuid.UUID, count: int | None = None) -> None:
    """What a worker does: QUEUED records of the batch (up to ``count``) become ISSUED."""
    await owner.execute(
        """
        UPDATE records SET state = 'ISSUED' WHERE id IN (
          SELECT id FROM records WHERE batch_id = $1 AND state = 'QUEUED' LIMIT $2)
        """,
        batch_id,
        count,
    )


async def drain(pool: asyncpg.Pool) -> int:
    """Claim and queue until nothing is left (a clean slate for the next test)."""
    total = 0
    while rows := await claim_and_queue(pool, 100_000):
        total += len(rows)
    return total
