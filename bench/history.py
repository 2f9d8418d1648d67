"""Benchmark: a database after years of use, and what it costs to read and purge it.

Builds, in the dedicated database ``--database`` (``credbatch_bench_history``; once, reused
when its scale matches), with owner-side INSERT … SELECT generate_series (never through the
API; the records' secondary indexes built after the load), at ``--scale`` S (1 = the full
size: about 22 minutes and 8.5 GB on 2 shared cores):

* 1,000 S tenants (at least 10), each with a schema;
* 100,000 S finished batches of 200 records each (20,000,000 S records), ended over the last
  three years, newest first: those ended within the retention period (30 days) keep their
  personal data, the next 5,000 S batches (1,000,000 S records) are due for the retention
  purge, and every older one is already purged (contact data and attributes NULL, as the
  janitor leaves them); their invitations DELIVERED, one in 50 BOUNCED (none for the
  FAILED records);
* 1,000,000 S PENDING records in 50 running batches of 50 tenants (the outbox);
* one finished batch of 100,000 records (the report), whatever the scale.

Then measures, the service as its own process and the client here: ListBatches and GetBatch
latency through gRPC as the application role (RLS applying), with the CPU per call of the
service and of the database (the machine is shared: latency follows its load, CPU does
not); the relay's claim (``outbox_claim``, as the relay's role, each window rolled back so
the outbox stays as it is); DownloadBatchReport of the 100,000-record batch, here and in an
empty database holding only that batch, in turns (history, empty, empty, history; each side a
fresh service, one download to warm it, then three counted, with the CPU per row of the
service and of the database); the retention purge of the due records (the janitor's pass,
as its role) while an issuance load claims, marks QUEUED and finishes outbox records, with
the claim's latency and the load's rate before and during it; and the table sizes.

    python -m bench.history [--scale 0.1] [--database NAME] [--rebuild] [--build-only]
                            [--skip-purge] [--pause 0.1] [--report-only] [--report-rounds 2]

Every figure is printed with the load average at the time. ``bench/purge_ab.py`` and
``bench/purge_windows.py`` run the purge on this history beside ``bench/issuance.py``.

The purge changes the data: a second run rebuilds the due slice first (``--rebuild``
rebuilds everything).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import grpc

from bench.issuance import backends_cpu, cpu_seconds, database_backends
from bench.status import _free_port, _percentiles, _timed, _wait_serving, _with_database
from credbatch.auth.tokens import mint_dev_token
from credbatch.config import Settings, load_settings
from credbatch.db.migrate import ensure_database, migrate
from credbatch.gen.batches.v1 import batches_service_pb2, batches_service_pb2_grpc
from workers.janitor.janitor import Periods, run_pass

DATABASE = "credbatch_bench_history"
RECORDS_PER_BATCH = 200
RETENTION_DAYS = 30
HISTORY_DAYS = 3 * 365
REPORT_ROWS = 100_000
REPORT_FILE = "report.csv"
RUNNING_BATCHES = 50
# Seconds of issuance measured alone, then during the purge.
LOAD_SECONDS = 10.0
WINDOW = 500
# outbox_claim(window, max in flight, per tenant, per batch, email rate, sms rate, quantum),
# with the relay's default caps and quantum (bench/fairness.py measures the same).
CLAIM = "SELECT tenant_id, record_id FROM outbox_claim($1, 1000, 750, 500, NULL, NULL, 50)"
MARK = "SELECT outbox_mark_queued($1::uuid[], $2::uuid[])"
TABLES = (
    "records",
    "batches",
    "batch_counts",
    "batch_count_deltas",
    "dispatch_batches",
    "dispatch_tenants",
    "dispatch_in_flight",
)


def _load() -> str:
    """The machine's load average now (1, 5 and 15 minutes): the machine is shared."""
    return "load {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def sizes(scale: float) -> dict[str, int]:
    batches = int(100_000 * scale)
    return {
        "tenants": max(10, int(1000 * scale)),
        "batches": batches,
        "records": batches * RECORDS_PER_BATCH,
        "due_batches": int(5000 * scale),
        "pending": int(1_000_000 * scale),
    }


async def _built_scale(conn: asyncpg.Connection) -> float | None:
    exists = await conn.fetchval("SELECT to_regclass('public.bench_history_meta') IS NOT NULL")
    if not exists:
        return None
    value: float | None = await conn.fetchval("SELECT scale FROM bench_history_meta")
    return value


async def build(owner_url: str, scale: float, rebuild: bool) -> None:
    """The history at ``scale``; kept when already built at that scale (the due slice is made
    due again, since a purge run erased it)."""
    conn = await asyncpg.connect(owner_url, command_timeout=None)
    try:
        n = sizes(scale)
        if not rebuild and await _built_scale(conn) == scale:
            await _make_due(conn, n)
            print(f"data: reusing scale {scale} ({n['records']:,} finished records)")
            return
        started = time.perf_counter()
        await conn.execute(
            "TRUNCATE certificates, credentials, status_lists, signing_keys, records, batches,"
            " credential_schema_versions, credential_schemas, tenants CASCADE"
        )
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_history_meta (scale float8);"
            " TRUNCATE bench_history_meta"
        )
        await conn.execute(
            "INSERT INTO tenants (id) SELECT md5('bench-' || t)::uuid"
            " FROM generate_series(0, $1 - 1) t",
            n["tenants"],
        )
        await conn.execute(
            """
            INSERT INTO credential_schemas (tenant_id, id, display_name, created_by)
            SELECT id, id, 'Diploma', 'bench' FROM tenants;
            INSERT INTO credential_schema_versions (tenant_id, schema_id, version, attributes,
                                                    created_by)
            SELECT id, id, 1, '[{"name": "name", "type": "STRING", "required": true}]', 'bench'
            FROM tenants;
            """
        )
        # Finished batches, rank 0 the newest, spread over the history; tenant = rank modulo.
        await conn.execute(
            """
            CREATE TEMP TABLE plan AS
            SELECT g AS rank, t.id AS tenant_id, gen_random_uuid() AS id,
                   now() - make_interval(secs => $2 * 86400.0 * (g + 1) / $1) AS ended
            FROM generate_series(0, $1 - 1) g
            JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS i FROM tenants) t
              ON t.i = g % $3
            """,
            n["batches"],
            float(HISTORY_DAYS),
            n["tenants"],
        )
        await conn.execute(
            """
            INSERT INTO batches (tenant_id, id, schema_id, schema_version, mediums, creator,
                                 department, filename, total_records, state, created_at,
                                 updated_at, completed_at, purged_at)
            SELECT p.tenant_id, p.id, p.tenant_id, 1, ARRAY['EMAIL'],
                   (ARRAY['ana', 'bob', 'carla'])[1 + p.rank % 3],
                   (ARRAY['sales', 'hr'])[1 + p.rank % 2],
                   'holders-' || p.rank || '.csv', $1,
                   CASE WHEN p.rank % 10 = 0 THEN 'COMPLETED_WITH_ERRORS' ELSE 'COMPLETED' END,
                   p.ended - interval '1 hour', p.ended, p.ended,
                   CASE WHEN p.ended < now() - make_interval(days => $2)
                             AND p.rank >= $3 THEN p.ended + make_interval(days => $2) END
            FROM plan p
            """,
            RECORDS_PER_BATCH,
            RETENTION_DAYS,
            await _due_rank_end(conn, n),
        )
        # The secondary indexes of records are built once over the loaded rows rather than
        # maintained row by row (the full scale loads 21,000,000 records).
        await conn.execute("SET synchronous_commit = off")
        indexes = await conn.fetch(
            "SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS def"
            " FROM pg_index i WHERE indrelid = 'records'::regclass"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
        )
        try:
            for index in indexes:
                await conn.execute(f"DROP INDEX {index['name']}")
            await _load_records(conn, n)
        finally:
            await conn.execute("SET maintenance_work_mem = '1GB'")
            for index in indexes:
                await conn.execute(index["def"])
        await conn.fetchval("SELECT batch_counts_fold(NULL, NULL)")
        await conn.execute("INSERT INTO bench_history_meta VALUES ($1)", scale)
        await conn.execute("VACUUM (ANALYZE)")
        print(
            f"data: built scale {scale} in {time.perf_counter() - started:.0f} s:"
            f" {n['tenants']:,} tenants, {n['batches']:,} finished batches,"
            f" {n['records']:,} records ({n['due_batches'] * RECORDS_PER_BATCH:,} due for"
            f" the purge), {n['pending']:,} PENDING, one {REPORT_ROWS:,}-record batch"
        )
    finally:
        await conn.close()


async def _load_records(conn: asyncpg.Connection, n: dict[str, int]) -> None:
    """The finished batches' records, the outbox and the report's batch."""
    # Records in slices of batches, so no one statement holds millions of rows in its
    # transition tables.
    step = max(1, 500_000 // RECORDS_PER_BATCH)
    for low in range(0, n["batches"], step):
        await conn.execute(
            """
            INSERT INTO records (tenant_id, id, batch_id, row_number, state, email, phone,
                                 attributes, error_code, created_at, updated_at,
                                 invited_at, purged_at, purge_reason, email_delivery,
                                 email_delivery_at)
            SELECT b.tenant_id, gen_random_uuid(), b.id, g,
                   CASE WHEN b.state = 'COMPLETED_WITH_ERRORS' AND g % 20 = 0
                        THEN 'FAILED' ELSE 'INVITED' END,
                   CASE WHEN b.purged_at IS NULL THEN 'holder' || g || '@example.org' END,
                   CASE WHEN b.purged_at IS NULL
                        THEN '+1500555' || lpad((g % 10000)::text, 4, '0') END,
                   CASE WHEN b.purged_at IS NULL
                        THEN jsonb_build_object('name', 'Holder ' || g)
                        ELSE '{}'::jsonb END,
                   CASE WHEN b.state = 'COMPLETED_WITH_ERRORS' AND g % 20 = 0
                        THEN 'SMTP_REJECTED' END,
                   b.created_at, b.completed_at, b.completed_at,
                   b.purged_at, CASE WHEN b.purged_at IS NOT NULL THEN 'RETENTION' END,
                   CASE WHEN b.state = 'COMPLETED_WITH_ERRORS' AND g % 20 = 0 THEN NULL
                        WHEN g % 50 = 7 THEN 'BOUNCED' ELSE 'DELIVERED' END,
                   CASE WHEN NOT (b.state = 'COMPLETED_WITH_ERRORS' AND g % 20 = 0)
                        THEN b.completed_at END
            FROM plan p
            JOIN batches b ON b.tenant_id = p.tenant_id AND b.id = p.id
            CROSS JOIN LATERAL generate_series(1, b.total_records) g
            WHERE p.rank >= $1 AND p.rank < $2
            """,
            low,
            low + step,
        )
    await _running(conn, n)
    await _report_batch(conn)


async def _due_rank_end(conn: asyncpg.Connection, n: dict[str, int]) -> int:
    """The rank of the first batch older than the due slice: recent ones, then due ones."""
    recent: int = await conn.fetchval(
        "SELECT count(*) FROM plan WHERE ended >= now() - make_interval(days => $1)",
        RETENTION_DAYS,
    )
    return recent + n["due_batches"]


async def _make_due(conn: asyncpg.Connection, n: dict[str, int]) -> None:
    """Give the due slice its personal data back (a previous run purged it), and the outbox
    its records (a previous run issued some: INVITED and QUEUED go back to PENDING, as a
    resend and the sweeper move them)."""
    await conn.execute(
        """
        UPDATE records r SET state = 'PENDING', updated_at = now()
        FROM batches b
        WHERE b.filename = 'running.csv' AND r.tenant_id = b.tenant_id AND r.batch_id = b.id
          AND r.state IN ('INVITED', 'QUEUED')
        """
    )
    await conn.execute(
        """
        WITH due AS (
          SELECT tenant_id, id FROM batches
          WHERE filename LIKE 'holders-%' AND completed_at < now() - make_interval(days => $1)
          ORDER BY completed_at DESC LIMIT $2)
        UPDATE batches b SET purged_at = NULL FROM due
        WHERE b.tenant_id = due.tenant_id AND b.id = due.id AND b.purged_at IS NOT NULL
        """,
        RETENTION_DAYS,
        n["due_batches"],
    )
    await conn.execute(
        """
        UPDATE records r
        SET email = 'holder' || r.row_number || '@example.org',
            attributes = jsonb_build_object('name', 'Holder ' || r.row_number),
            purged_at = NULL, purge_reason = NULL
        FROM batches b
        WHERE b.tenant_id = r.tenant_id AND b.id = r.batch_id AND b.purged_at IS NULL
          AND r.purged_at IS NOT NULL
        """
    )


async def _running(conn: asyncpg.Connection, n: dict[str, int]) -> None:
    """The outbox: PENDING records in RUNNING_BATCHES batches of as many tenants."""
    per = max(1, n["pending"] // RUNNING_BATCHES)
    await conn.execute(
        """
        INSERT INTO batches (tenant_id, id, schema_id, schema_version, mediums, creator,
                             department, filename, total_records, state)
        SELECT id, gen_random_uuid(), id, 1, ARRAY['EMAIL'], 'ana', 'sales', 'running.csv', $2,
               'IN_PROGRESS'
        FROM tenants ORDER BY id LIMIT $1
        """,
        RUNNING_BATCHES,
        per,
    )
    await conn.execute(
        """
        INSERT INTO records (tenant_id, id, batch_id, row_number, email, attributes)
        SELECT b.tenant_id, gen_random_uuid(), b.id, g, 'holder' || g || '@example.org',
               jsonb_build_object('name', 'Holder ' || g)
        FROM batches b CROSS JOIN LATERAL generate_series(1, b.total_records) g
        WHERE b.filename = 'running.csv'
        """
    )


async def _report_batch(conn: asyncpg.Connection) -> None:
    await conn.execute(
        """
        INSERT INTO batches (tenant_id, id, schema_id, schema_version, mediums, creator,
                             department, filename, total_records, state, completed_at)
        SELECT id, gen_random_uuid(), id, 1, ARRAY['EMAIL'], 'ana', 'sales', $1, $2,
               'COMPLETED', now() FROM tenants ORDER BY id LIMIT 1
        """,
        REPORT_FILE,
        REPORT_ROWS,
    )
    await conn.execute(
        """
        INSERT INTO records (tenant_id, id, batch_id, row_number, state, email, phone,
                             attributes, invited_at, email_delivery, email_delivery_at)
        SELECT b.tenant_id, gen_random_uuid(), b.id, g, 'INVITED',
               'holder' || g || '@example.org', '+15005550006',
               jsonb_build_object('name', 'Holder ' || g), now(),
               CASE WHEN g % 50 = 7 THEN 'BOUNCED' ELSE 'DELIVERED' END, now()
        FROM batches b CROSS JOIN LATERAL generate_series(1, b.total_records) g
        WHERE b.filename = $1
        """,
        REPORT_FILE,
    )


async def service(settings: Settings) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {
        **os.environ,
        "CREDBATCH_DATABASE_URL": settings.database_url,
        "CREDBATCH_APP_DATABASE_URL": settings.app_database_url,
        "CREDBATCH_BATCHES_PORT": str(port),
        "CREDBATCH_KEK": settings.kek or "",
    }
    proc = subprocess.Popen([sys.executable, "-m", "services.batch_status"], env=env)
    await _wait_serving(port, proc)
    return proc, port


class _Cpu:
    """CPU the service process and the database's backends spent since the last reading, per
    call: unlike latency, it does not grow with the load of a shared machine."""

    def __init__(self, pid: int, database: str) -> None:
        self.pid = pid
        self.database = database
        self._mark()

    def _mark(self) -> None:
        self.service = cpu_seconds(self.pid)
        self.backends = database_backends(self.database)

    def per_call(self, calls: int) -> str:
        service = cpu_seconds(self.pid) - self.service
        backends = backends_cpu(self.backends, database_backends(self.database))
        self._mark()
        return (
            f"CPU per call: service {service * 1000 / calls:.2f} ms,"
            f" database {backends * 1000 / calls:.2f} ms"
        )


async def reads(settings: Settings, port: int, owner_url: str, pid: int, database: str) -> None:
    conn = await asyncpg.connect(owner_url)
    try:
        rows = await conn.fetch(
            "SELECT tenant_id, id FROM batches TABLESAMPLE SYSTEM (5) WHERE filename LIKE"
            " 'holders-%' LIMIT 2000"
        )
        tenants = [r["id"] for r in await conn.fetch("SELECT id FROM tenants")]
        big = await conn.fetchrow(
            "SELECT tenant_id, id FROM batches WHERE filename = $1", REPORT_FILE
        )
    finally:
        await conn.close()
    rng = random.Random(7)
    md_of: dict[uuid.UUID, Any] = {}

    def md(tenant: uuid.UUID) -> Any:
        if tenant not in md_of:
            token = mint_dev_token(settings, tenant=tenant, sub="root", roles=["org_admin"])
            md_of[tenant] = (("authorization", f"Bearer {token}"),)
        return md_of[tenant]

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub: Any = batches_service_pb2_grpc.BatchStatusServiceStub(channel)
        for tenant in tenants[:20]:
            await stub.ListBatches(batches_service_pb2.ListBatchesRequest(), metadata=md(tenant))
        cpu = _Cpu(pid, database)
        samples: list[float] = []
        filters = ["", "state = COMPLETED_WITH_ERRORS", 'creator = "bob"']
        for i in range(300):
            tenant = rng.choice(tenants)
            request = batches_service_pb2.ListBatchesRequest(filter=filters[i % len(filters)])
            page = await _timed(samples, stub.ListBatches, request, md(tenant))
            if page.next_page_token and i % 3 == 0:
                deeper = batches_service_pb2.ListBatchesRequest(
                    filter=request.filter, page_token=page.next_page_token
                )
                await _timed(samples, stub.ListBatches, deeper, md(tenant))
        print(f"ListBatches (page 50)        {_percentiles(samples)}; {_load()}")
        print(f"{'':29}{cpu.per_call(len(samples))}")
        samples = []
        for _ in range(1000):
            row = rng.choice(rows)
            get = batches_service_pb2.GetBatchRequest(name=f"batches/{row['id']}")
            await _timed(samples, stub.GetBatch, get, md(row["tenant_id"]))
        print(f"GetBatch (finished, 200)     {_percentiles(samples)}; {_load()}")
        print(f"{'':29}{cpu.per_call(len(samples))}")
        samples = []
        get = batches_service_pb2.GetBatchRequest(name=f"batches/{big['id']}")
        for _ in range(300):
            await _timed(samples, stub.GetBatch, get, md(big["tenant_id"]))
        print(f"GetBatch ({REPORT_ROWS:,} records)  {_percentiles(samples)}; {_load()}")
        print(f"{'':29}{cpu.per_call(len(samples))}")


async def report_rate(
    settings: Settings, port: int, owner_url: str, downloads: int = 3
) -> list[float]:
    """Rows per second of each of ``downloads`` downloads of the report batch."""
    conn = await asyncpg.connect(owner_url)
    try:
        row = await conn.fetchrow(
            "SELECT tenant_id, id FROM batches WHERE filename = $1", REPORT_FILE
        )
    finally:
        await conn.close()
    assert row is not None
    token = mint_dev_token(settings, tenant=row["tenant_id"], sub="root", roles=["org_admin"])
    md = (("authorization", f"Bearer {token}"),)
    request = batches_service_pb2.DownloadBatchReportRequest(name=f"batches/{row['id']}")
    rates = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub: Any = batches_service_pb2_grpc.BatchStatusServiceStub(channel)
        for _ in range(downloads):
            lines = 0
            started = time.perf_counter()
            async for chunk in stub.DownloadBatchReport(request, metadata=md):
                lines += chunk.chunk.count(b"\n")
            rates.append((lines - 1) / (time.perf_counter() - started))
    return rates


async def claim_latencies(relay_url: str, windows: int, warm: int = 0) -> list[float]:
    """Claim windows as the relay's role, each rolled back: the outbox stays as it is. The
    first ``warm`` windows are not sampled: a relay claims on a long-lived connection, whose
    first calls compile the claim's functions and plan their statements (a session's caches)."""
    relay = await asyncpg.connect(relay_url)
    try:
        samples = []
        for _ in range(warm + windows):
            tx = relay.transaction()
            await tx.start()
            started = time.perf_counter()
            await relay.fetch(CLAIM, WINDOW)
            samples.append(time.perf_counter() - started)
            await tx.rollback()
        return samples[warm:]
    finally:
        await relay.close()


async def issuance_load(
    relay_url: str, owner_url: str, stop: asyncio.Event, claims: list[float]
) -> int:
    """What issuance does to the database, without a broker: the relay claims a window and
    marks it QUEUED; the workers then move those records QUEUED -> ISSUED -> INVITED. Returns
    the records invited."""
    relay = await asyncpg.connect(relay_url)
    worker = await asyncpg.connect(owner_url)
    done = 0
    try:
        while not stop.is_set():
            async with relay.transaction():
                started = time.perf_counter()
                rows = await relay.fetch(CLAIM, WINDOW)
                claims.append(time.perf_counter() - started)
                if rows:
                    await relay.fetchval(
                        MARK, [r["tenant_id"] for r in rows], [r["record_id"] for r in rows]
                    )
            if not rows:
                break
            tenants = [r["tenant_id"] for r in rows]
            ids = [r["record_id"] for r in rows]
            for target, stamp in (("ISSUED", "issued_at"), ("INVITED", "invited_at")):
                # By primary key (tenant, id), as the workers find their records.
                await worker.execute(
                    f"UPDATE records SET state = '{target}', {stamp} = now(), updated_at = now()"
                    " WHERE (tenant_id, id) IN (SELECT * FROM unnest($1::uuid[], $2::uuid[]))",
                    tenants,
                    ids,
                )
            done += len(ids)
    finally:
        await relay.close()
        await worker.close()
    return done


async def purge_under_load(settings: Settings, owner_url: str, database: str, pause: float) -> None:
    """Issuance for LOAD_SECONDS alone, then for LOAD_SECONDS while the purge runs (the purge
    goes on to its end); the rates and claim latencies of both windows, the purge's rate."""
    relay_url = _with_database(settings.relay_database_url, database)
    janitor_url = _with_database(settings.janitor_database_url, database)
    stop = asyncio.Event()
    before: list[float] = []
    load = asyncio.create_task(issuance_load(relay_url, owner_url, stop, before))
    await asyncio.sleep(LOAD_SECONDS)
    stop.set()
    quiet = await load
    print(
        f"issuance alone ({LOAD_SECONDS:.0f} s)        {quiet / LOAD_SECONDS:,.0f} records/s"
        f" invited; claim {_percentiles(before)}; {_load()}"
    )
    pool = await asyncpg.create_pool(janitor_url, min_size=1, max_size=1)
    try:
        periods = Periods(RETENTION_DAYS, 400, _prune_periods())
        started = time.perf_counter()
        purging = asyncio.create_task(run_pass(pool, periods, 1000, asyncio.Event(), pause))
        stop = asyncio.Event()
        during: list[float] = []
        load = asyncio.create_task(issuance_load(relay_url, owner_url, stop, during))
        await asyncio.sleep(LOAD_SECONDS)
        stop.set()
        busy = await load
        throughout = not purging.done()
        result = await purging
        took = time.perf_counter() - started
    finally:
        await pool.close()
    print(
        f"retention purge              {result.purged:,} records of {result.batches_done:,}"
        f" batches in {took:.0f} s ({result.purged / took:,.0f} records/s, steps of 1,000,"
        f" {pause:g} s pause); {_load()}"
    )
    print(
        f"issuance during it ({LOAD_SECONDS:.0f} s)    {busy / LOAD_SECONDS:,.0f} records/s"
        f" invited; claim {_percentiles(during)}; {_load()}"
        + ("" if throughout else "  (the purge ended within the window)")
    )


def _prune_periods() -> dict[str, timedelta]:
    kinds = (
        "webhook_deliveries",
        "webhook_events",
        "spent_nonces",
        "offers",
        "access_tokens",
        "idempotency_keys",
        "dispatch",
    )
    return {kind: timedelta(days=30) for kind in kinds}


async def table_sizes(owner_url: str) -> None:
    conn = await asyncpg.connect(owner_url)
    try:
        for table in TABLES:
            row = await conn.fetchrow(
                "SELECT pg_size_pretty(pg_relation_size($1::regclass)) AS heap,"
                " pg_size_pretty(pg_indexes_size($1::regclass)) AS indexes,"
                " pg_size_pretty(pg_total_relation_size($1::regclass)) AS total,"
                " (SELECT reltuples::bigint FROM pg_class WHERE oid = $1::regclass) AS rows",
                table,
            )
            assert row is not None
            print(
                f"  {table:<22} rows ~{row['rows']:>12,}  heap {row['heap']:>9}"
                f"  indexes {row['indexes']:>9}  total {row['total']:>9}"
            )
        total = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
        print(f"  database total: {total}")
    finally:
        await conn.close()


async def empty_database(base: Settings, database: str) -> Settings:
    """Settings for ``database``, made (once) empty but for the same report batch."""
    owner_url = _with_database(base.database_url, database)
    settings = base.with_overrides(
        database_url=owner_url,
        app_database_url=_with_database(base.app_database_url, database),
    )
    await ensure_database(owner_url)
    await migrate(owner_url)
    conn = await asyncpg.connect(owner_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM batches WHERE filename = $1", REPORT_FILE):
            await conn.execute(
                "INSERT INTO tenants (id) VALUES (md5('empty')::uuid);"
                " INSERT INTO credential_schemas (tenant_id, id, display_name, created_by)"
                " SELECT id, id, 'Diploma', 'bench' FROM tenants;"
                " INSERT INTO credential_schema_versions (tenant_id, schema_id, version,"
                " attributes, created_by) SELECT id, id, 1, '[]', 'bench' FROM tenants"
            )
            await _report_batch(conn)
            await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()
    return settings


async def report_side(settings: Settings, database: str, downloads: int) -> tuple[float, str]:
    """The median rate of ``downloads`` downloads from a service started for them, after one
    download that is not counted (the service's first page on each connection prepares its
    statements, and the batch's pages come into shared buffers), and the CPU per row."""
    proc, port = await service(settings)
    try:
        await report_rate(settings, port, settings.database_url, downloads=1)
        cpu = _Cpu(proc.pid, database)
        rates = await report_rate(settings, port, settings.database_url, downloads)
        per_row = cpu.per_call(downloads * REPORT_ROWS // 1000)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    return statistics.median(rates), per_row.replace("per call", "per 1,000 rows")


async def report_pairs(history: Settings, empty: Settings, rounds: int, downloads: int) -> None:
    """The report batch from the history and from the empty database in turns (A B B A per
    round), each side a fresh service: the two differ only in what else the database holds."""
    sides: dict[str, list[float]] = {"history": [], "empty": []}
    names = {"history": history, "empty": empty}
    for side in ["history", "empty", "empty", "history"] * rounds:
        settings = names[side]
        database = settings.database_url.rsplit("/", 1)[1]
        rate, cpu = await report_side(settings, database, downloads)
        sides[side].append(rate)
        print(
            f"DownloadBatchReport {REPORT_ROWS:,}, {side:<7} {rate:9,.0f} rows/s; {cpu}; {_load()}"
        )
    full, empty_rate = (statistics.median(sides[k]) for k in ("history", "empty"))
    print(
        f"DownloadBatchReport {REPORT_ROWS:,}, medians: history {full:,.0f}, empty"
        f" {empty_rate:,.0f} rows/s ({full / empty_rate:.2f})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=0.1, help="1 = the full size")
    parser.add_argument("--rebuild", action="store_true", help="build the data again")
    parser.add_argument("--skip-purge", action="store_true", help="leave the purge out")
    parser.add_argument("--build-only", action="store_true", help="build the data and stop")
    parser.add_argument(
        "--report-only", action="store_true", help="only the report, history against empty"
    )
    parser.add_argument(
        "--report-rounds",
        type=int,
        default=2,
        help="report rounds (history, empty, empty, history)",
    )
    parser.add_argument(
        "--pause",
        type=float,
        default=Settings.janitor_step_pause,
        help="seconds the janitor rests between steps (CREDBATCH_JANITOR_STEP_PAUSE)",
    )
    parser.add_argument(
        "--database",
        default=DATABASE,
        help="the history's database (the empty one is this name with _empty)",
    )
    args = parser.parse_args()
    base = load_settings()
    owner_url = _with_database(base.database_url, args.database)
    settings = base.with_overrides(
        database_url=owner_url,
        app_database_url=_with_database(base.app_database_url, args.database),
    )
    await ensure_database(owner_url)
    await migrate(owner_url)
    await build(owner_url, args.scale, args.rebuild)
    if args.build_only:
        await table_sizes(owner_url)
        return
    print(f"machine: {os.cpu_count()} cores (shared); scale {args.scale}")
    empty = await empty_database(base, args.database + "_empty")
    if args.report_only:
        await report_pairs(settings, empty, args.report_rounds, 3)
        return
    proc, port = await service(settings)
    try:
        await reads(settings, port, owner_url, proc.pid, args.database)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    await report_pairs(settings, empty, args.report_rounds, 3)
    relay_url = _with_database(base.relay_database_url, args.database)
    cold = await claim_latencies(relay_url, 1)
    print(f"relay claim, a new connection's first window: {cold[0] * 1000:.1f} ms")
    print(
        f"relay claim (window {WINDOW})     "
        f"{_percentiles(await claim_latencies(relay_url, 300, warm=20))}; {_load()}"
    )
    if not args.skip_purge:
        await purge_under_load(base, owner_url, args.database, args.pause)
    print("table sizes:")
    await table_sizes(owner_url)


if __name__ == "__main__":
    asyncio.run(main())
