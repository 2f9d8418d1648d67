"""End-to-end issuance benchmark: records/s from an accepted upload to every record INVITED.

For each configuration (1 and 2 worker processes, without and with certificates) it uploads a
``--rows``-row EMAIL batch through the real UploadService, and times from the upload's
response (the batch accepted) until the batch is COMPLETED. Everything runs as its own
process on this machine, as in production: the UploadService, the outbox relay, the issuance
workers (``python -m workers.issuance``) and the local SMTP sink. The database is the
configured one (CREDBATCH_* environment; migrations are applied first); RabbitMQ traffic goes
to a throw-away virtual host (created and deleted with rabbitmqctl).

    python bench/issuance.py               # 20,000 rows
    python bench/issuance.py --rows 5000
    python bench/issuance.py --metrics     # every process serves /metrics (traces unsampled)
    python bench/issuance.py --rows 5000 --certificates without
    python bench/issuance.py --against 496825a --rounds 2   # both trees, in turns
    python bench/issuance.py --statements 15   # each run's costliest statements per record

``--statements`` reads ``pg_stat_statements`` (the server must preload it:
``shared_preload_libraries = 'pg_stat_statements'``) for the run's database alone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import grpc

from credbatch.auth.tokens import mint_dev_token
from credbatch.catalog import repository as catalog
from credbatch.catalog.model import CertificateTemplate, SchemaDraft
from credbatch.config import Settings, load_settings
from credbatch.db.migrate import ensure_database, migrate
from credbatch.db.pool import create_pool
from credbatch.gen.common.v1 import medium_pb2
from credbatch.gen.uploads.v1 import uploads_service_pb2, uploads_service_pb2_grpc
from credbatch.messaging.topology import WORK_QUEUE
from credbatch.schema.model import Attribute, AttributeType
from credbatch.templating.certificate import CertificateLayout
from credbatch.tenancy import TenantScope, tenant_transaction

ROOT = Path(__file__).resolve().parents[1]
ATTRIBUTES = (
    Attribute("name", AttributeType.STRING, required=True),
    Attribute("score", AttributeType.INTEGER),
    Attribute("passed", AttributeType.BOOLEAN),
)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


async def wait_consumers(vhost: str, count: int, timeout: float = 60.0) -> None:
    """Wait until the work queue has count consumers (the workers are ready)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = subprocess.run(
            ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "consumers"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        for line in listed.stdout.splitlines():
            name, _, consumers = line.partition("\t")
            if name == WORK_QUEUE and consumers.strip().isdigit() and int(consumers) >= count:
                return
        await asyncio.sleep(0.5)
    raise SystemExit(f"{count} workers did not start consuming within {timeout:.0f} s")


def holder_line(i: int) -> str:
    return f"holder{i}@example.com,Holder {i},{i % 100},{'true' if i % 2 else 'false'}\r\n"


def csv_chunks(
    rows: int, header: str = "email,name,score,passed\r\n", line: Callable[[int], str] = holder_line
) -> Iterator[bytes]:
    """The CSV of ``rows`` rows (``line(i)`` each, after ``header``), in chunks of 20,000."""
    lines = [header]
    for i in range(rows):
        lines.append(line(i))
        if len(lines) >= 20_000:
            yield "".join(lines).encode()
            lines = []
    if lines:
        yield "".join(lines).encode()


async def requests(
    header: uploads_service_pb2.UploadBatchHeader, chunks: Iterator[bytes]
) -> AsyncIterator[uploads_service_pb2.UploadBatchRequest]:
    yield uploads_service_pb2.UploadBatchRequest(header=header)
    for chunk in chunks:
        yield uploads_service_pb2.UploadBatchRequest(chunk=chunk)


async def create_schema(
    pool: asyncpg.Pool, tenant: uuid.UUID, certificate: bool
) -> tuple[str, str]:
    scope = TenantScope(tenant, "bench", frozenset({"org_admin"}))
    async with tenant_transaction(pool, scope) as conn:
        stored = await catalog.create_schema(
            conn,
            SchemaDraft(f"Bench {uuid.uuid4()}", ATTRIBUTES, requires_certificate=certificate),
            "bench",
        )
        template_name = ""
        if certificate:
            template = await catalog.create_certificate_template(
                conn,
                CertificateTemplate(
                    id=uuid.uuid4(),
                    display_name=f"Bench certificate {uuid.uuid4()}",
                    title="Certificate of completion",
                    body="This certifies that {{ name }} completed the course "
                    "with a score of {{ score }}.",
                    layout=CertificateLayout(),
                ),
                "bench",
            )
            template_name = template.name
    return stored.schema.name, template_name


async def wait_completed(
    pool: asyncpg.Pool, batch_id: uuid.UUID, timeout: float
) -> tuple[float, float]:
    """Monotonic times at which no record was PENDING any more (all published by the relay)
    and at which the batch was seen COMPLETED."""
    deadline = time.monotonic() + timeout
    published = 0.0
    while time.monotonic() < deadline:
        state = await pool.fetchval("SELECT state FROM batches WHERE id = $1", batch_id)
        if not published:
            pending = await pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM records WHERE batch_id = $1 AND state = 'PENDING')",
                batch_id,
            )
            published = 0.0 if pending else time.monotonic()
        if state == "COMPLETED":
            return published or time.monotonic(), time.monotonic()
        if state in ("COMPLETED_WITH_ERRORS", "FAILED", "CANCELLED"):
            raise SystemExit(f"batch ended {state}")
        await asyncio.sleep(0.05)
    counts = await pool.fetch(
        "SELECT state, count(*) FROM records WHERE batch_id = $1 GROUP BY state", batch_id
    )
    raise SystemExit(f"batch not completed after {timeout}s: {[tuple(c) for c in counts]}")


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def external_pids() -> dict[str, list[int]]:
    """PostgreSQL and RabbitMQ server processes on this machine (read-only, for accounting)."""
    found: dict[str, list[int]] = {"postgres": [], "rabbitmq": []}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm == "postgres":
            found["postgres"].append(int(entry.name))
        elif comm in ("beam.smp", "erl_child_setup"):
            found["rabbitmq"].append(int(entry.name))
    return found


def children_of(parents: list[int]) -> list[int]:
    """The processes whose parent is one of parents (read-only, for accounting)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent in parents:
            found.append(int(entry.name))
    return found


def database_backends(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``database`` (by process title)."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        # "postgres: 15/main: <user> <database> <host>(<port>) <state>"
        if title.startswith("postgres: ") and f" {database} " in title:
            found[int(entry.name)] = cpu_seconds(int(entry.name))
    return found


def backends_cpu(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU the backends spent between two readings (a backend that started meanwhile counts
    from zero; one that ended meanwhile is lost, so keep connections open over a run)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def cpu_snapshot(groups: dict[str, list[int]]) -> dict[str, float]:
    snapshot = {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in groups.items()}
    # The whole machine (every process, including database backends that come and go).
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    snapshot["machine busy"] = (sum(fields) - idle) / _TICKS
    snapshot["machine total"] = sum(fields) / _TICKS
    return snapshot


class Processes:
    """Child processes started with a shared environment, stopped with SIGTERM."""

    def __init__(self, env: dict[str, str], metrics: bool = False) -> None:
        self.env = env
        self.metrics = metrics
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        env = self.env
        if self.metrics:
            env = {**env, "CREDBATCH_METRICS_PORT": str(free_port())}
        process = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
        )
        self.started.append(process)
        return process

    def stop(self, processes: list[subprocess.Popen[bytes]]) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            self.started.remove(process)


_TOP_STATEMENTS = """
SELECT calls, total_exec_time, rows, regexp_replace(query, '\\s+', ' ', 'g') AS query
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)
ORDER BY total_exec_time DESC LIMIT $2
"""


async def reset_statements(owner: asyncpg.Pool, database: str) -> None:
    await owner.execute(
        "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = $1), 0)",
        database,
    )


async def print_statements(owner: asyncpg.Pool, database: str, rows: int, top: int) -> None:
    """The costliest statements of the run, per issued record (execution time, not CPU)."""
    found = await owner.fetch(_TOP_STATEMENTS, database, top)
    total = sum(row["total_exec_time"] for row in found)
    print(f"{'':>38}top {top} statements: {total * 1000 / rows:.0f} µs per record in all")
    for row in found:
        print(
            f"{'':>40}{row['total_exec_time'] * 1000 / rows:7.1f} µs  "
            f"{row['calls'] / rows:5.2f} calls  {row['rows'] / rows:6.2f} rows  "
            f"{row['query'][:110]}"
        )


async def run(
    rows: int,
    metrics: bool,
    certificates: tuple[bool, ...] = (False, True),
    statements: int = 0,
    worker_counts: tuple[int, ...] = (1, 2),
    prefix: str = "credbatch_bench_",
) -> None:
    base: Settings = load_settings()
    # A database of its own: the relay serves every PENDING record of a database, and a
    # shared development database may hold other batches still waiting.
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    settings = base.with_overrides(
        database_url=with_database(base.database_url, name),
        app_database_url=with_database(base.app_database_url, name),
    )
    await ensure_database(settings.database_url)
    await migrate(settings.database_url)
    vhost = f"credbatch_bench_{uuid.uuid4().hex[:12]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    amqp_host = settings.amqp_url.split("@")[-1].split("/")[0]
    mail_dir = tempfile.mkdtemp(prefix="credbatch-bench-mail-")
    uploads_port, smtp_port = free_port(), free_port()
    env = {
        **os.environ,
        "CREDBATCH_DATABASE_URL": settings.database_url,
        "CREDBATCH_APP_DATABASE_URL": settings.app_database_url,
        "CREDBATCH_AMQP_URL": f"amqp://guest:guest@{amqp_host}/{vhost}",
        "CREDBATCH_UPLOADS_PORT": str(uploads_port),
        "CREDBATCH_SMTP_PORT": str(smtp_port),
        "CREDBATCH_KEK": settings.kek or base64.b64encode(os.urandom(32)).decode(),
        "CREDBATCH_MAX_ROWS": str(max(rows, settings.max_rows)),
        "OTEL_SDK_DISABLED": "true",
    }
    if metrics:
        # Metrics need the SDK; spans are then made but not sampled, so only metrics cost.
        env.update(OTEL_SDK_DISABLED="false", OTEL_TRACES_SAMPLER="always_off")
    processes = Processes(env, metrics)
    pool = await create_pool(settings.app_database_url, max_size=2)
    owner = await create_pool(settings.database_url, max_size=2)
    if statements:
        await owner.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    print(
        f"cores: {os.cpu_count()}; rows per batch: {rows:,} (EMAIL); SMTP: local aiosmtpd sink;"
        f" metrics {'on' if metrics else 'off'}"
    )
    try:
        sink = processes.start(
            "-m", "credbatch.devsinks.smtp", "--port", str(smtp_port), "--dir", mail_dir
        )
        uploads = processes.start("-m", "services.uploads")
        relay = processes.start("-m", "workers.relay")
        async with grpc.aio.insecure_channel(f"127.0.0.1:{uploads_port}") as channel:
            await asyncio.wait_for(channel.channel_ready(), 30)
            stub = uploads_service_pb2_grpc.UploadServiceStub(channel)
            for certificate in certificates:
                for workers in worker_counts:
                    tenant = uuid.uuid4()
                    schema, template = await create_schema(pool, tenant, certificate)
                    started = [processes.start("-m", "workers.issuance") for _ in range(workers)]
                    # Consuming: connected, declared, and their render processes started.
                    await wait_consumers(vhost, workers)
                    if uploads.poll() is not None:
                        raise SystemExit("the upload service exited")
                    token = mint_dev_token(
                        settings,
                        tenant=tenant,
                        sub="bench",
                        roles=["issuer"],
                        departments=["default"],
                    )
                    header = uploads_service_pb2.UploadBatchHeader(
                        schema=schema,
                        mediums=[medium_pb2.MEDIUM_EMAIL],
                        certificate_template=template,
                        filename="bench.csv",
                        request_id=str(uuid.uuid4()),
                    )
                    groups = {
                        "workers": [p.pid for p in started],
                        # Each worker renders templates in processes of its own.
                        "render processes": children_of([p.pid for p in started]),
                        "relay": [relay.pid],
                        "uploads": [uploads.pid],
                        "smtp sink": [sink.pid],
                        **external_pids(),
                    }
                    if statements:
                        await reset_statements(owner, name)
                    before = cpu_snapshot(groups)
                    backends_before = database_backends(name)
                    upload_started = time.monotonic()
                    response = await stub.UploadBatch(
                        requests(header, csv_chunks(rows)),
                        metadata=(("authorization", f"Bearer {token}"),),
                    )
                    accepted = time.monotonic()
                    batch_id = uuid.UUID(response.batch.name.split("/")[-1])
                    published, done = await wait_completed(owner, batch_id, timeout=rows / 20 + 60)
                    after = cpu_snapshot(groups)
                    # Render processes the workers started after the first snapshot (or in
                    # place of one that ended): all their CPU belongs to this run.
                    late = set(children_of(groups["workers"])) - set(groups["render processes"])
                    after["render processes"] += sum(cpu_seconds(pid) for pid in late)
                    backends = backends_cpu(backends_before, database_backends(name))
                    processes.stop(started)
                    label = f"{workers} worker{'s' if workers > 1 else ''}, " + (
                        "with certificates" if certificate else "without certificates"
                    )
                    print(
                        f"{label:>36}: {rows / (done - accepted):8,.0f} records/s "
                        f"(accepted -> all INVITED {done - accepted:.1f} s; "
                        f"all published {published - accepted:.1f} s; "
                        f"upload {accepted - upload_started:.1f} s)",
                        flush=True,
                    )
                    cpu = ", ".join(
                        f"{name} {(after[name] - before[name]) * 1000 / rows:.2f}"
                        for name in groups
                        if name not in ("postgres", "machine busy", "machine total")
                    )
                    cpu += f", postgres backends {backends * 1000 / rows:.2f}"
                    busy = after["machine busy"] - before["machine busy"]
                    total = after["machine total"] - before["machine total"]
                    print(
                        f"{'':>38}CPU ms per record: {cpu}; machine {busy * 1000 / rows:.2f} "
                        f"({busy / max(total, 1e-9):.0%} of all cores busy)",
                        flush=True,
                    )
                    if statements:
                        await print_statements(owner, name, rows, statements)
    finally:
        processes.stop(list(processes.started))
        shutil.rmtree(mail_dir, ignore_errors=True)  # every message of the run, one file each
        await pool.close()
        await owner.close()
        rabbitmqctl("delete_vhost", vhost)
        conn = await asyncpg.connect(with_database(base.database_url, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument(
        "--metrics", action="store_true", help="every process serves /metrics on a free port"
    )
    parser.add_argument(
        "--certificates", choices=("both", "with", "without"), default="both", help="runs to do"
    )
    parser.add_argument(
        "--against", metavar="REV", help="run REV's benchmark too, in turns (bench/issuance_ab.py)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="with --against: runs a side")
    parser.add_argument(
        "--statements",
        type=int,
        default=0,
        metavar="N",
        help="print each run's N costliest statements per record (pg_stat_statements)",
    )
    parser.add_argument(
        "--workers", type=int, choices=(1, 2), help="only this many workers (default: 1, then 2)"
    )
    parser.add_argument(
        "--database-prefix",
        default="credbatch_bench_",
        help="the throw-away database's name starts with this",
    )
    args = parser.parse_args()
    if args.against:
        sys.path.insert(0, str(ROOT))  # run as a script, bench/ is not a package on the path
        from bench.issuance_ab import compare

        compare(args.against, args.rows, args.rounds, args.certificates, args.workers)
        return
    runs = {"both": (False, True), "with": (True,), "without": (False,)}[args.certificates]
    workers = (args.workers,) if args.workers else (1, 2)
    asyncio.run(run(args.rows, args.metrics, runs, args.statements, workers, args.database_prefix))


if __name__ == "__main__":
    main()
