"""Benchmark: BatchStatusService on 1,000 batches and 2,000,000 records across 3 tenants,
plus one running batch of 1,000,000 records.

Arranges the data (once; reused when already there) in the dedicated database
``credbatch_bench_status`` with owner-side bulk INSERT … SELECT generate_series (every batch
starts IN_PROGRESS; the finished ones then reach their terminal state through the same state
UPDATEs the worker and CancelBatch run; the records_count_* triggers see every
statement), starts the real service process against it, and prints ListBatches and GetBatch
latency (p50/p95/p99, through gRPC as the application role, RLS applying), GetBatch on the
running 1,000,000-record batch, the database reads of 50 WatchBatch streams on it, and
DownloadBatchReport rows/s.

    python -m bench.status [--rebuild]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from credbatch.auth.tokens import mint_dev_token
from credbatch.config import Settings, load_settings
from credbatch.db.migrate import ensure_database, migrate
from credbatch.gen.batches.v1 import batches_service_pb2, batches_service_pb2_grpc

DATABASE = "credbatch_bench_status"
TENANTS = 3
BATCHES = 1000
RECORDS = 2_000_000
BIG = 1_000_000  # records of the one running batch GetBatch and WatchBatch are timed on
BIG_FILE = "big.csv"
WATCHERS = 50
WATCH_SECONDS = 10.0
ISSUERS = ("ana", "bob", "carla", "dan", "eve")
DEPARTMENTS = ("sales", "hr")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _tenant(i: int) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"credbatch-bench-status-{i}")


async def arrange(owner_url: str, rebuild: bool) -> None:
    conn = await asyncpg.connect(owner_url)
    try:
        have = await conn.fetchval("SELECT count(*) FROM records")
        finished = await conn.fetchval(
            "SELECT count(*) FROM batches WHERE state IN ('COMPLETED', 'COMPLETED_WITH_ERRORS')"
        )
        if have >= RECORDS and finished and not rebuild:
            if not await conn.fetchval("SELECT 1 FROM batches WHERE filename = $1", BIG_FILE):
                await _arrange_big(conn)
                await conn.fetchval("SELECT batch_counts_fold(NULL, NULL)")
                await conn.execute("VACUUM (ANALYZE) records")
            print(f"data: reusing {BATCHES} batches / {RECORDS:,} records (+ {BIG:,})")
            return
        started = time.perf_counter()
        await conn.execute(
            "TRUNCATE certificates, credentials, status_lists, signing_keys, records, batches,"
            " credential_schema_versions, credential_schemas, tenants CASCADE"
        )
        # What becomes of each batch: 1 in 10 still in progress ('live'), 1 in 25 cancelled
        # half-way, the rest finished, a third of those without any failure ('clean').
        await conn.execute(
            "CREATE TEMP TABLE bench_plan (tenant_id uuid, id uuid, seq int, kind text)"
            " ON COMMIT PRESERVE ROWS"
        )
        per_batch = RECORDS // BATCHES
        for t in range(TENANTS):
            tenant, schema = _tenant(t), uuid.uuid4()
            await conn.execute("INSERT INTO tenants (id) VALUES ($1)", tenant)
            await conn.execute(
                "INSERT INTO credential_schemas (tenant_id, id, display_name, created_by)"
                " VALUES ($1, $2, 'Diploma', 'bench')",
                tenant,
                schema,
            )
            await conn.execute(
                "INSERT INTO credential_schema_versions (tenant_id, schema_id, version,"
                " attributes, created_by) VALUES ($1, $2, 1, '[]', 'bench')",
                tenant,
                schema,
            )
            # Batches t, t+3, t+6, … belong to tenant t.
            await conn.execute(
                """
                INSERT INTO bench_plan (tenant_id, id, seq, kind)
                SELECT $1, gen_random_uuid(), g,
                       CASE WHEN g % 10 = 0 THEN 'live' WHEN g % 25 = 1 THEN 'cancelled'
                            WHEN g % 3 = 0 THEN 'clean' ELSE 'errors' END
                FROM generate_series($2::int, $3 - 1, $4::int) AS g
                """,
                tenant,
                t,
                BATCHES,
                TENANTS,
            )
            # Every batch starts IN_PROGRESS, as the worker leaves it once it picked it up;
            # its terminal state comes below through the same UPDATEs the system runs.
            await conn.execute(
                """
                INSERT INTO batches (tenant_id, id, schema_id, schema_version, mediums, creator,
                                     department, filename, total_records, state, created_at,
                                     updated_at)
                SELECT p.tenant_id, p.id, $2, 1, ARRAY['EMAIL'],
                       ($3::text[])[1 + p.seq % cardinality($3::text[])],
                       ($4::text[])[1 + p.seq % cardinality($4::text[])],
                       'holders-' || p.seq || '.csv', $5, 'IN_PROGRESS',
                       now() - make_interval(mins => $6 - p.seq),
                       now() - make_interval(mins => $6 - p.seq)
                FROM bench_plan p WHERE p.tenant_id = $1
                """,
                tenant,
                schema,
                list(ISSUERS),
                list(DEPARTMENTS),
                per_batch,
                BATCHES,
            )
        # Records: 1 in 50 FAILED with an error (none in 'clean' batches), the rest INVITED;
        # live batches have their last quarter QUEUED and their recent completions in the last
        # minute; cancelled ones had their second half still QUEUED when cancelled.
        await conn.execute(
            """
            INSERT INTO records (tenant_id, id, batch_id, row_number, state, email, phone,
                                 error_code, error_message, created_at, updated_at)
            SELECT b.tenant_id, gen_random_uuid(), b.id, g,
                   CASE WHEN p.kind = 'live' AND g > b.total_records * 3 / 4 THEN 'QUEUED'
                        WHEN p.kind = 'cancelled' AND g > b.total_records / 2 THEN 'QUEUED'
                        WHEN g % 50 = 0 AND p.kind <> 'clean' THEN 'FAILED'
                        ELSE 'INVITED' END,
                   'holder' || g || '@example.org',
                   '+1500555' || lpad((g % 10000)::text, 4, '0'),
                   CASE WHEN g % 50 = 0 AND p.kind <> 'clean' THEN 'SMTP_REJECTED' END,
                   CASE WHEN g % 50 = 0 AND p.kind <> 'clean' THEN 'mailbox unavailable' END,
                   b.created_at,
                   CASE WHEN p.kind = 'live'
                          THEN now() - make_interval(secs => (b.total_records - g) / 20.0)
                        ELSE b.created_at + make_interval(secs => g / 100.0) END
            FROM batches b
            JOIN bench_plan p ON p.tenant_id = b.tenant_id AND p.id = b.id
            CROSS JOIN LATERAL generate_series(1, b.total_records) AS g
            """
        )
        # CancelBatch: unprocessed records first, then the batch (credbatch.batches.repository).
        await conn.execute(
            """
            UPDATE records r SET state = 'CANCELLED', updated_at = r.updated_at
            FROM bench_plan p
            WHERE p.kind = 'cancelled' AND r.tenant_id = p.tenant_id AND r.batch_id = p.id
              AND r.state IN ('PENDING', 'QUEUED')
            """
        )
        await conn.execute(
            """
            UPDATE batches b
            SET state = 'CANCELLED',
                cancelled_at = b.created_at + make_interval(secs => b.total_records / 200.0),
                completed_at = b.created_at + make_interval(secs => b.total_records / 200.0),
                updated_at = b.created_at + make_interval(secs => b.total_records / 200.0)
            FROM bench_plan p
            WHERE p.kind = 'cancelled' AND p.tenant_id = b.tenant_id AND p.id = b.id
            """
        )
        # The issuance worker's COMPLETE_BATCHES (workers/issuance/outcome_repository.py), for every
        # batch whose records are all done.
        await conn.execute(
            """
            UPDATE batches b
            SET state = CASE WHEN EXISTS (SELECT 1 FROM records f
                                          WHERE f.tenant_id = b.tenant_id AND f.batch_id = b.id
                                            AND f.state = 'FAILED')
                             THEN 'COMPLETED_WITH_ERRORS' ELSE 'COMPLETED' END,
                completed_at = b.created_at + make_interval(secs => b.total_records / 100.0),
                updated_at = b.created_at + make_interval(secs => b.total_records / 100.0)
            WHERE b.state IN ('QUEUED', 'IN_PROGRESS')
              AND NOT EXISTS (SELECT 1 FROM records r
                              WHERE r.tenant_id = b.tenant_id AND r.batch_id = b.id
                                AND r.state IN ('PENDING', 'QUEUED', 'ISSUED'))
            """
        )
        await conn.execute("DROP TABLE bench_plan")
        await _arrange_big(conn)
        await conn.fetchval("SELECT batch_counts_fold(NULL, NULL)")
        await conn.execute("VACUUM (ANALYZE) batches")
        await conn.execute("VACUUM (ANALYZE) records")
        mix = await conn.fetch(
            "SELECT state, count(*) AS n FROM batches GROUP BY state ORDER BY state"
        )
        print(
            f"data: arranged {BATCHES + 1} batches / {RECORDS + BIG:,} records in"
            f" {time.perf_counter() - started:.0f} s; "
            + ", ".join(f"{r['state']} {r['n']}" for r in mix)
        )
    finally:
        await conn.close()


async def _arrange_big(conn: asyncpg.Connection) -> None:
    """A running batch of tenant 0: three quarters INVITED, the last minute's at 200 a second,
    the rest QUEUED. One INSERT as the owner: its statement trigger adds one count row per
    state, as an upload's inserts would."""
    await conn.execute(
        """
        INSERT INTO batches (tenant_id, id, schema_id, schema_version, mediums, creator,
                             department, filename, total_records, state, created_at, updated_at)
        SELECT tenant_id, gen_random_uuid(), schema_id, 1, ARRAY['EMAIL'], 'ana', 'sales', $2,
               $3, 'IN_PROGRESS', now() - interval '2 hours', now() - interval '2 hours'
        FROM batches WHERE tenant_id = $1 LIMIT 1
        """,
        _tenant(0),
        BIG_FILE,
        BIG,
    )
    await conn.execute(
        """
        INSERT INTO records (tenant_id, id, batch_id, row_number, state, email, created_at,
                             updated_at)
        SELECT b.tenant_id, gen_random_uuid(), b.id, g,
               CASE WHEN g > b.total_records * 3 / 4 THEN 'QUEUED' ELSE 'INVITED' END,
               'holder' || g || '@example.org', b.created_at,
               now() - make_interval(
                 secs => greatest(b.total_records * 3 / 4 - g, 0) / 200.0)
        FROM batches b CROSS JOIN LATERAL generate_series(1, b.total_records) AS g
        WHERE b.filename = $1
        """,
        BIG_FILE,
    )


async def _batch_reads(owner_url: str) -> int:
    """Index scans of batches so far: one per batch read of the service (nothing else of the
    benchmark reads batches meanwhile). Statistics reach the view after a backend is idle
    for up to ten seconds, so callers wait that long first."""
    conn = await asyncpg.connect(owner_url)
    try:
        n: int = await conn.fetchval(
            "SELECT coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = 'batches'"
        )
        return n
    finally:
        await conn.close()


async def measure_big(
    settings: Settings, stub: Any, md: Any, batch_id: uuid.UUID, owner_url: str
) -> None:
    get = batches_service_pb2.GetBatchRequest(name=f"batches/{batch_id}")
    for _ in range(20):  # warm-up
        await stub.GetBatch(get, metadata=md)
    samples: list[float] = []
    for _ in range(500):
        view = await _timed(samples, stub.GetBatch, get, md)
    print(
        f"GetBatch (1,000,000 records, running) {_percentiles(samples)}"
        f"  invited {view.record_counts.invited:,} queued {view.record_counts.queued:,}"
    )
    await asyncio.sleep(11)
    before = await _batch_reads(owner_url)
    request = batches_service_pb2.WatchBatchRequest(name=f"batches/{batch_id}")
    # Fifty different callers: each caller may hold only a few watches at once.
    calls = []
    for i in range(WATCHERS):
        token = mint_dev_token(settings, tenant=_tenant(0), sub=f"viewer-{i}", roles=["org_admin"])
        calls.append(stub.WatchBatch(request, metadata=(("authorization", f"Bearer {token}"),)))
    for call in calls:
        await call.read()
    await asyncio.sleep(WATCH_SECONDS)
    for call in calls:
        call.cancel()
    await asyncio.sleep(11)
    reads = await _batch_reads(owner_url) - before
    shared = reads - WATCHERS
    print(
        f"WatchBatch x{WATCHERS} on it for {WATCH_SECONDS:.0f} s: {reads} batch reads"
        f" ({WATCHERS} first reads, one per caller, + {shared} shared polls ="
        f" {shared / WATCH_SECONDS:.2f}/s)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _wait_serving(port: int, proc: subprocess.Popen[bytes]) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"service exited with {proc.returncode}")
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("service did not start")


def _percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    q = statistics.quantiles(ms, n=100)
    return f"p50 {q[49]:6.1f} ms  p95 {q[94]:6.1f} ms  p99 {q[98]:6.1f} ms  (n={len(ms)})"


async def _timed(
    samples: list[float], method: Callable[..., Awaitable[Any]], request: Any, md: Any
) -> Any:
    started = time.perf_counter()
    result = await method(request, metadata=md)
    samples.append(time.perf_counter() - started)
    return result


async def measure(settings: Settings, port: int, owner_url: str) -> None:
    conn = await asyncpg.connect(owner_url)
    try:
        rows = await conn.fetch(
            "SELECT tenant_id, id, creator, department FROM batches WHERE filename <> $1",
            BIG_FILE,
        )
        big = await conn.fetchval("SELECT id FROM batches WHERE filename = $1", BIG_FILE)
    finally:
        await conn.close()
    rng = random.Random(7)
    callers: list[tuple[uuid.UUID, tuple[tuple[str, str], ...]]] = []
    for t in range(TENANTS):
        tenant = _tenant(t)
        for sub, roles, departments in (
            ("root", ["org_admin"], []),
            ("svc", ["service"], []),
            ("ana", ["issuer"], ["sales"]),
            ("olga", ["observer"], ["hr"]),
        ):
            token = mint_dev_token(
                settings, tenant=tenant, sub=sub, roles=roles, departments=departments
            )
            callers.append((tenant, (("authorization", f"Bearer {token}"),)))
    admin_md = {tenant: md for tenant, md in callers[::4]}
    filters = ["", 'department = "sales"', "state = COMPLETED_WITH_ERRORS", 'creator = "bob"']
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub: Any = batches_service_pb2_grpc.BatchStatusServiceStub(channel)
        # Warm-up: connections, plans, caches.
        for _, md in callers:
            await stub.ListBatches(batches_service_pb2.ListBatchesRequest(), metadata=md)
        list_samples: list[float] = []
        listed = 0
        for i in range(300):
            tenant, md = callers[i % len(callers)]
            request = batches_service_pb2.ListBatchesRequest(filter=filters[i % len(filters)])
            page = await _timed(list_samples, stub.ListBatches, request, md)
            listed += len(page.batches)
            if page.next_page_token and i % 3 == 0:  # deeper pages too
                request = batches_service_pb2.ListBatchesRequest(
                    filter=request.filter, page_token=page.next_page_token
                )
                page = await _timed(list_samples, stub.ListBatches, request, md)
                listed += len(page.batches)
        print(f"ListBatches (page 50)   {_percentiles(list_samples)}  {listed} batches returned")

        get_samples: list[float] = []
        for _ in range(1000):
            row = rng.choice(rows)
            get = batches_service_pb2.GetBatchRequest(name=f"batches/{row['id']}")
            await _timed(get_samples, stub.GetBatch, get, admin_md[row["tenant_id"]])
        print(f"GetBatch (2,000 records) {_percentiles(get_samples)}")
        await measure_big(settings, stub, admin_md[_tenant(0)], big, owner_url)

        report_rows = 0
        started = time.perf_counter()
        for row in rng.sample(rows, 60):
            download = batches_service_pb2.DownloadBatchReportRequest(name=f"batches/{row['id']}")
            md = admin_md[row["tenant_id"]]
            async for chunk in stub.DownloadBatchReport(download, metadata=md):
                report_rows += chunk.chunk.count(b"\n")
        elapsed = time.perf_counter() - started
        report_rows -= 60  # header rows
        print(
            f"DownloadBatchReport     {report_rows / elapsed:,.0f} rows/s"
            f"  ({report_rows:,} rows of 60 batches in {elapsed:.2f} s)"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rebuild", action="store_true", help="arrange the data again")
    args = parser.parse_args()
    base = load_settings()
    owner_url = _with_database(base.database_url, DATABASE)
    settings = base.with_overrides(
        database_url=owner_url, app_database_url=_with_database(base.app_database_url, DATABASE)
    )
    await ensure_database(owner_url)
    await migrate(owner_url)
    await arrange(owner_url, args.rebuild)
    port = _free_port()
    env = {
        **os.environ,
        "CREDBATCH_DATABASE_URL": settings.database_url,
        "CREDBATCH_APP_DATABASE_URL": settings.app_database_url,
        "CREDBATCH_BATCHES_PORT": str(port),
        "CREDBATCH_KEK": settings.kek or "",
    }
    proc = subprocess.Popen([sys.executable, "-m", "services.batch_status"], env=env)
    try:
        await _wait_serving(port, proc)
        print(f"machine: {os.cpu_count()} cores; service in its own process, client here")
        await measure(settings, port, owner_url)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


if __name__ == "__main__":
    asyncio.run(main())
