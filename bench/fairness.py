"""Benchmark: the relay's fair claim on 1,000,000 PENDING records in 1,000 active batches.

Arranges (once; reused when already there) the database ``credbatch_bench_fairness``: 100
tenants x 10 batches x 1,000 PENDING records, inserted as the owner with generate_series (one
INSERT per batch, so the dispatch keys are kept by the same statement triggers an upload
fires). Then, as the application role, like the relay:

1. claim latency: windows of 500 (quantum 50, in-flight caps 1000/750/500), each claimed,
   marked QUEUED and committed; the records then become ISSUED as a worker would leave them,
   so the caps never bind. Prints p50/p95/p99 of the claim statement alone, and the load
   average. Every ``--vacuum-every`` windows the small dispatch tables are vacuumed, as
   autovacuum does with its default settings (they pass its threshold within seconds);
   a server running with autovacuum off (this machine's shared one) would never do it, and
   their dead rows would slow every claim. 0 = never.
2. a small batch behind a big one: a tenant's 20-row batch arrives behind a 100,000-row batch
   of another tenant (and the 1,000 active batches); prints how many records were dispatched
   before its last record was, and after how many windows (in insertion order: all of them).

    python -m bench.fairness [--rebuild] [--windows N] [--vacuum-every N] [--database NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from credbatch.config import load_settings
from credbatch.db.migrate import ensure_database, migrate

DATABASE = "credbatch_bench_fairness"
TENANTS, BATCHES_PER_TENANT, ROWS = 100, 10, 1000
WINDOW, QUANTUM = 500, 50
CAPS = (1000, 750, 500)
CLAIM = """
SELECT tenant_id, batch_id, record_id FROM outbox_claim($1, $2, $3, $4, NULL, NULL, $5)
"""
MARK = "SELECT outbox_mark_queued($1::uuid[], $2::uuid[])"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def add_batch(
    conn: asyncpg.Connection, tenant: uuid.UUID, schema: uuid.UUID, rows: int
) -> uuid.UUID:
    batch = uuid.uuid4()
    await conn.execute(
        "INSERT INTO batches (tenant_id, id, schema_id, schema_version, mediums, creator,"
        " department, total_records) VALUES ($1, $2, $3, 1, '{EMAIL}', 'bench', 'default', $4)",
        tenant,
        batch,
        schema,
        rows,
    )
    await conn.execute(
        "INSERT INTO records (tenant_id, id, batch_id, row_number, email)"
        " SELECT $1, gen_random_uuid(), $2, g, 'h' || g || '@example.test'"
        " FROM generate_series(1, $3) AS g",
        tenant,
        batch,
        rows,
    )
    return batch


async def add_tenant(conn: asyncpg.Connection) -> tuple[uuid.UUID, uuid.UUID]:
    tenant, schema = uuid.uuid4(), uuid.uuid4()
    await conn.execute("INSERT INTO tenants (id) VALUES ($1)", tenant)
    await conn.execute(
        "INSERT INTO credential_schemas (tenant_id, id, display_name, created_by)"
        " VALUES ($1, $2, 'bench', 'bench')",
        tenant,
        schema,
    )
    await conn.execute(
        "INSERT INTO credential_schema_versions (tenant_id, schema_id, version, attributes,"
        " requires_certificate, created_by) VALUES ($1, $2, 1, '[]', false, 'bench')",
        tenant,
        schema,
    )
    return tenant, schema


async def arrange(owner_url: str, rebuild: bool) -> None:
    conn = await asyncpg.connect(owner_url)
    try:
        pending = await conn.fetchval("SELECT count(*) FROM records WHERE state = 'PENDING'")
        if pending >= TENANTS * BATCHES_PER_TENANT * ROWS and not rebuild:
            print(f"reusing the database: {pending:,} PENDING records")
            return
        await conn.execute("TRUNCATE tenants, dispatch_tenants, dispatch_batches CASCADE")
        started = time.perf_counter()
        for _ in range(TENANTS):
            async with conn.transaction():
                tenant, schema = await add_tenant(conn)
                for _ in range(BATCHES_PER_TENANT):
                    await add_batch(conn, tenant, schema, ROWS)
        await conn.execute("VACUUM ANALYZE records")
        await conn.execute("VACUUM ANALYZE dispatch_batches")
        total, batches = TENANTS * BATCHES_PER_TENANT * ROWS, TENANTS * BATCHES_PER_TENANT
        took = time.perf_counter() - started
        print(f"arranged {total:,} records in {batches} batches in {took:.0f} s")
    finally:
        await conn.close()


async def window(conn: asyncpg.Connection) -> tuple[float, list[asyncpg.Record]]:
    """One relay window without the broker; returns the claim's duration and its rows."""
    async with conn.transaction():
        started = time.perf_counter()
        rows = await conn.fetch(CLAIM, WINDOW, *CAPS, QUANTUM)
        took = time.perf_counter() - started
        if rows:
            await conn.fetchval(
                MARK, [r["tenant_id"] for r in rows], [r["record_id"] for r in rows]
            )
    return took, list(rows)


async def finish(owner: asyncpg.Connection) -> None:
    await owner.execute("UPDATE records SET state = 'ISSUED' WHERE state = 'QUEUED'")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--vacuum-every", type=int, default=20)
    parser.add_argument("--database", default=DATABASE)
    args = parser.parse_args()
    settings = load_settings()
    owner_url = _with_database(settings.database_url, args.database)
    # The claim is the relay role's alone.
    relay_url = _with_database(settings.relay_database_url, args.database)
    await ensure_database(owner_url)
    await migrate(owner_url)
    await arrange(owner_url, args.rebuild)

    owner = await asyncpg.connect(owner_url)
    relay = await asyncpg.connect(relay_url)
    try:
        keys = await owner.fetchval("SELECT count(*) FROM dispatch_batches")
        pending = int(await owner.fetchval("SELECT sum(pending) FROM dispatch_batches"))
        print(f"active batches {keys:,}, pending {pending:,}")
        autovacuum = await owner.fetchval("SHOW autovacuum")
        load_before = os.getloadavg()[0]
        durations: list[float] = []
        for n in range(1, args.windows + 1):
            took, _rows = await window(relay)
            durations.append(took)
            await finish(owner)
            if args.vacuum_every and n % args.vacuum_every == 0:
                await owner.execute("VACUUM dispatch_in_flight, dispatch_batches, dispatch_tenants")
        print(
            f"claim of {WINDOW} (quantum {QUANTUM}, caps {CAPS}) over {args.windows} windows: "
            f"p50 {statistics.median(durations) * 1000:.1f} ms, "
            f"p95 {percentile(durations, 0.95) * 1000:.1f} ms, "
            f"p99 {percentile(durations, 0.99) * 1000:.1f} ms "
            f"(server autovacuum {autovacuum}; dispatch tables vacuumed every "
            f"{args.vacuum_every or 'never'} windows; load average {load_before:.1f} -> "
            f"{os.getloadavg()[0]:.1f})"
        )

        # A small batch behind a big one.
        async with owner.transaction():
            big_tenant, big_schema = await add_tenant(owner)
            await add_batch(owner, big_tenant, big_schema, 100_000)
        for _ in range(4):  # the big batch is under way
            await window(relay)
            await finish(owner)
        ahead = int(await owner.fetchval("SELECT sum(pending) FROM dispatch_batches"))
        async with owner.transaction():
            small_tenant, small_schema = await add_tenant(owner)
            small = await add_batch(owner, small_tenant, small_schema, 20)
        other, windows, seen = 0, 0, 0
        while seen < 20:
            _took, rows = await window(relay)
            await finish(owner)
            windows += 1
            if not rows:
                break
            mine = [i for i, r in enumerate(rows) if r["batch_id"] == small]
            seen += len(mine)
            upto = mine[-1] if seen >= 20 else len(rows)
            other += sum(1 for r in rows[:upto] if r["batch_id"] != small)
        print(
            f"20-row batch arriving behind {ahead:,} PENDING records (a 100,000-row batch "
            f"among {keys + 1:,} active batches): all 20 dispatched in window {windows}, "
            f"after {other:,} other records (in creation order: after all {ahead:,})"
        )
    finally:
        await relay.close()
        await owner.close()


if __name__ == "__main__":
    asyncio.run(main())
