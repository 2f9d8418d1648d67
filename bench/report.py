"""DownloadBatchReport benchmark: rows/s streamed and the service's peak memory.

Arranges, once per size, a batch of ``--rows`` records in the dedicated database
``credbatch_bench_report`` (owner-side INSERT ... generate_series: most records INVITED, one
in fifty FAILED with an error message, one in a thousand holding a comma and a quote so the
quoting path runs too), starts ``python -m services.batch_status`` as its own process and
downloads the whole report through gRPC as the application role (RLS applying), counting the
CSV rows received. Peak memory is the service's VmHWM from /proc after the downloads; CPU
per row is the service's and its PostgreSQL backends' (utime + stime from /proc), which a
shared machine's load does not inflate as it does wall time.

``--root`` runs the service from another checkout (e.g. a worktree of the previous revision),
so that two revisions can be measured alternately in one sitting on the same data.

    python -m bench.report --rows 1000000 [--root /tmp/before] [--downloads 3] [--issued]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import grpc

from bench.status import _free_port, _wait_serving, _with_database
from bench.upload import peak_rss_mb
from credbatch.auth.tokens import mint_dev_token
from credbatch.config import load_settings
from credbatch.db.migrate import ensure_database, migrate
from credbatch.gen.batches.v1 import batches_service_pb2, batches_service_pb2_grpc

DATABASE = "credbatch_bench_report"
ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


# What an issued record holds besides its row: a credential (its SD-JWT about a kilobyte)
# and a certificate; the report reads only their ids, through the (tenant_id, record_id) keys.
ISSUE = """
WITH k AS (
  INSERT INTO signing_keys (tenant_id, kid, alg, public_jwk, private_key_enc, nonce)
  VALUES ($1, 'bench', 'ES256', '{"kty": "EC"}', '\\x00', '\\x000000000000000000000000')
  RETURNING kid
), l AS (
  INSERT INTO status_lists (tenant_id, id, size, bits)
  VALUES ($1, gen_random_uuid(), $3, decode(repeat('00', ($3 + 7) / 8), 'hex'))
  RETURNING id
), c AS (
  INSERT INTO credentials (tenant_id, id, record_id, batch_id, kid, status_list_id,
                           status_index, sd_jwt, claim_token)
  SELECT $1, gen_random_uuid(), r.id, r.batch_id, (SELECT kid FROM k), (SELECT id FROM l),
         r.row_number - 1, repeat('j', 1000), md5(r.id::text)
  FROM records r WHERE r.tenant_id = $1 AND r.batch_id = $2
)
INSERT INTO certificates (tenant_id, id, record_id, pdf)
SELECT $1, 'Cert_' || replace(r.id::text, '-', ''), r.id, '\\x255044462d312e37'
FROM records r WHERE r.tenant_id = $1 AND r.batch_id = $2
"""


async def arrange(owner_url: str, rows: int, issued: bool = False) -> tuple[uuid.UUID, uuid.UUID]:
    """The tenant and batch of ``rows`` records (made once per size, then reused); with
    ``issued``, every record with a credential and a certificate."""
    suffix = "-issued" if issued else ""
    tenant = uuid.uuid5(uuid.NAMESPACE_URL, f"credbatch-bench-report-{rows}{suffix}")
    conn = await asyncpg.connect(owner_url)
    try:
        found = await conn.fetchval(
            "SELECT id FROM batches WHERE tenant_id = $1 AND total_records = $2", tenant, rows
        )
        if found is not None:
            return tenant, found
        started = time.perf_counter()
        schema, batch = uuid.uuid4(), uuid.uuid4()
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
        await conn.execute(
            "INSERT INTO batches (tenant_id, id, schema_id, schema_version, mediums, creator,"
            " department, filename, total_records, state)"
            " VALUES ($1, $2, $3, 1, ARRAY['EMAIL', 'SMS'], 'ana', 'default', 'report.csv', $4,"
            " 'IN_PROGRESS')",
            tenant,
            batch,
            schema,
            rows,
        )
        await conn.execute(
            """
            INSERT INTO records (tenant_id, id, batch_id, row_number, state, email, phone,
                                 error_code, error_message)
            SELECT $1, gen_random_uuid(), $2, g,
                   CASE WHEN g % 50 = 0 THEN 'FAILED' ELSE 'INVITED' END,
                   'holder' || g || '@example.org', '+1415' || lpad(g::text, 7, '0'),
                   CASE WHEN g % 50 = 0 THEN 'SMTP_REJECTED' END,
                   CASE WHEN g % 1000 = 0 THEN 'mailbox "full", try later'
                        WHEN g % 50 = 0 THEN 'mailbox unavailable' END
            FROM generate_series(1, $3::int) AS g
            """,
            tenant,
            batch,
            rows,
        )
        if issued:
            await conn.execute(ISSUE, tenant, batch, rows)
        await conn.execute("VACUUM (ANALYZE) records, credentials, certificates")
        print(f"arranged {rows:,} records in {time.perf_counter() - started:.1f} s")
        return tenant, batch
    finally:
        await conn.close()


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


async def _backend_cpu(owner_url: str) -> dict[int, float]:
    """CPU seconds of every PostgreSQL backend connected to the benchmark's database."""
    conn = await asyncpg.connect(owner_url)
    try:
        pids = await conn.fetch(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return {row["pid"]: cpu_seconds(row["pid"]) for row in pids}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--downloads", type=int, default=2)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout to run the service from")
    parser.add_argument("--database", default=DATABASE, help="the database to arrange it in")
    parser.add_argument(
        "--issued", action="store_true", help="every record with a credential and a certificate"
    )
    args = parser.parse_args()
    base = load_settings()
    owner_url = _with_database(base.database_url, args.database)
    app_url = _with_database(base.app_database_url, args.database)
    await ensure_database(owner_url)
    await migrate(owner_url)
    tenant, batch = await arrange(owner_url, args.rows, args.issued)
    port = _free_port()
    env = {
        **os.environ,
        "CREDBATCH_DATABASE_URL": owner_url,
        "CREDBATCH_APP_DATABASE_URL": app_url,
        "CREDBATCH_BATCHES_PORT": str(port),
        "CREDBATCH_KEK": base.kek or "",
        "OTEL_SDK_DISABLED": "true",
        "PYTHONPATH": str(args.root),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.batch_status"],
        cwd=args.root,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    token = mint_dev_token(base, tenant=tenant, sub="root", roles=["org_admin"], departments=[])
    md = (("authorization", f"Bearer {token}"),)
    try:
        await _wait_serving(port, proc)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = batches_service_pb2_grpc.BatchStatusServiceStub(channel)
            request = batches_service_pb2.DownloadBatchReportRequest(name=f"batches/{batch}")
            rates = []
            async for _ in stub.DownloadBatchReport(request, metadata=md):
                pass  # warm-up: the pool's connections open, the first plans are made
            backends = await _backend_cpu(owner_url)
            service_cpu = cpu_seconds(proc.pid)
            for _ in range(args.downloads):
                received = 0
                started = time.perf_counter()
                async for reply in stub.DownloadBatchReport(request, metadata=md):
                    received += reply.chunk.count(b"\n")
                elapsed = time.perf_counter() - started
                # The header row, and the quoted messages hold no line break.
                assert received - 1 == args.rows, received
                rates.append(args.rows / elapsed)
            service_cpu = cpu_seconds(proc.pid) - service_cpu
            after = await _backend_cpu(owner_url)
            backend_cpu = sum(cpu - backends.get(pid, 0.0) for pid, cpu in after.items())
        per_row = 1e6 / (args.rows * args.downloads)
        print(
            f"{args.root.name}: {args.rows:,} rows{' issued' if args.issued else ''}, "
            f"load average {os.getloadavg()[0]:.1f}: "
            f"{', '.join(f'{r:,.0f}' for r in rates)} rows/s; service peak RSS (VmHWM) "
            f"{peak_rss_mb(proc.pid):.0f} MB; CPU per row: service "
            f"{service_cpu * per_row:.2f} us, PostgreSQL {backend_cpu * per_row:.2f} us"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=15)


if __name__ == "__main__":
    asyncio.run(main())
