"""Upload benchmark: rows/s for validate_only and accept-and-store, and the service's peak RSS.

Starts the UploadService as its own process (``python -m services.uploads``) on a free port
against the configured database (CREDBATCH_* environment; migrations are applied first),
creates a schema with five attributes in a fresh tenant, generates a file of ``--rows`` rows
(email, phone and the five attributes) streamed in 1 MiB chunks, and uploads it twice:
validate_only, then accept-and-store. Peak RSS is the service's VmHWM from /proc, the
service's process alone; each phase prints its own (VmHWM reset before it) and that of each
validation pool process (the service's children), and the CPU per row of the service and of
the PostgreSQL backends it opened (utime + stime from /proc), which a shared machine's load
moves far less than wall time. ``--root`` runs the service from another checkout (a worktree
of the previous revision) for an A/B.

    python bench/upload.py                # 100,000 rows
    python bench/upload.py --rows 1000000
    python bench/upload.py --root /tmp/before
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import grpc

from credbatch.auth.tokens import mint_dev_token
from credbatch.catalog import repository as catalog
from credbatch.catalog.model import SchemaDraft
from credbatch.config import Settings, load_settings
from credbatch.db.migrate import ensure_database, migrate
from credbatch.db.pool import create_pool
from credbatch.gen.common.v1 import medium_pb2
from credbatch.gen.uploads.v1 import uploads_service_pb2, uploads_service_pb2_grpc
from credbatch.schema.model import Attribute, AttributeType
from credbatch.tenancy import TenantScope, tenant_transaction

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 1 << 20
ATTRIBUTES = (
    Attribute("name", AttributeType.STRING, required=True),
    Attribute("age", AttributeType.INTEGER),
    Attribute("born", AttributeType.DATE),
    Attribute("score", AttributeType.NUMBER),
    Attribute("level", AttributeType.ENUM, enum_values=("Gold", "Silver", "Bronze")),
)


def generate(rows: int) -> Iterator[bytes]:
    """The CSV file in ~1 MiB chunks, generated on the fly (never held whole)."""
    levels = ("Gold", "Silver", "Bronze")
    parts = ["email,phone,name,age,born,score,level\r\n"]
    size = len(parts[0])
    for i in range(rows):
        # Unique, valid US numbers: area codes 201-989 (excluding N11), exchange 2xx-9xx.
        area = 201 + (i // 8_000_000) % 700
        rest = i % 8_000_000
        phone = f"+1{area}{200 + rest // 10_000}{rest % 10_000:04d}"
        line = (
            f"holder{i}@example.com,{phone},Holder {i},{18 + i % 70},"
            f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10},{i % 1000}.25,{levels[i % 3]}\r\n"
        )
        parts.append(line)
        size += len(line)
        if size >= CHUNK:
            yield "".join(parts).encode()
            parts, size = [], 0
    if parts:
        yield "".join(parts).encode()


async def requests(
    header: uploads_service_pb2.UploadBatchHeader, rows: int
) -> AsyncIterator[uploads_service_pb2.UploadBatchRequest]:
    yield uploads_service_pb2.UploadBatchRequest(header=header)
    for chunk in generate(rows):
        yield uploads_service_pb2.UploadBatchRequest(chunk=chunk)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def peak_rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return float("nan")
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def validation_processes(pid: int) -> list[int]:
    """The service's validation pool processes (its children but multiprocessing's resource
    tracker)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children.extend(int(child) for child in (task / "children").read_text().split())
    return sorted(
        child
        for child in children
        if b"resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes()
    )


def reset_peak_rss(pids: list[int]) -> None:
    """Start each process's VmHWM again from its current RSS, so a phase has its own peak."""
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")


async def create_schema(settings: Settings, tenant: uuid.UUID) -> str:
    pool = await create_pool(settings.app_database_url, max_size=1)
    try:
        scope = TenantScope(tenant, "bench", frozenset({"org_admin"}))
        async with tenant_transaction(pool, scope) as conn:
            stored = await catalog.create_schema(
                conn, SchemaDraft(f"Bench {tenant}", ATTRIBUTES), "bench"
            )
        return stored.schema.name
    finally:
        await pool.close()


async def wait_ready(channel: grpc.aio.Channel, service: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if service.poll() is not None:
            raise SystemExit(f"the upload service exited with {service.returncode}")
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout=0.1)
            return
        except TimeoutError:
            continue
    raise SystemExit("the upload service did not start")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


async def backend_cpu(owner_url: str, since: float) -> dict[int, float]:
    """CPU seconds of the PostgreSQL backends the uploads process opened (since ``since``)."""
    conn = await asyncpg.connect(owner_url)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'uploads' AND backend_start >= to_timestamp($1)",
            since,
        )
    finally:
        await conn.close()
    return {row["pid"]: cpu_seconds(row["pid"]) for row in rows}


async def run(rows: int, target: str | None, root: Path = ROOT) -> None:
    settings = load_settings()
    await ensure_database(settings.database_url)
    await migrate(settings.database_url)
    tenant = uuid.uuid4()
    schema = await create_schema(settings, tenant)
    service: subprocess.Popen[bytes] | None = None
    service_start = time.time() - 1
    if target is None:
        port = free_port()
        env = {
            **os.environ,
            "CREDBATCH_UPLOADS_PORT": str(port),
            "CREDBATCH_MAX_ROWS": str(max(rows, settings.max_rows)),
            "OTEL_SDK_DISABLED": "true",
            "PYTHONPATH": str(root),
        }
        service = subprocess.Popen(
            [sys.executable, "-m", "services.uploads"],
            cwd=root,
            env=env,
            stderr=subprocess.DEVNULL,
        )
        target = f"127.0.0.1:{port}"
    token = mint_dev_token(
        settings, tenant=tenant, sub="bench", roles=["issuer"], departments=["default"]
    )
    metadata = (("authorization", f"Bearer {token}"),)
    try:
        async with grpc.aio.insecure_channel(target) as channel:
            if service is not None:
                await wait_ready(channel, service)
            stub = uploads_service_pb2_grpc.UploadServiceStub(channel)
            print(
                f"rows: {rows:,} (email, phone, 5 attributes), 1 MiB chunks, {os.cpu_count()} cores"
            )
            peak = 0.0
            for validate_only in (True, False):
                header = uploads_service_pb2.UploadBatchHeader(
                    schema=schema,
                    mediums=[medium_pb2.MEDIUM_EMAIL, medium_pb2.MEDIUM_SMS],
                    filename=f"bench-{rows}.csv",
                    validate_only=validate_only,
                )
                pool = validation_processes(service.pid) if service is not None else []
                if service is not None:
                    reset_peak_rss([service.pid, *pool])
                cpu = cpu_seconds(service.pid) if service is not None else 0.0
                backends = await backend_cpu(settings.database_url, service_start)
                started = time.perf_counter()
                response = await stub.UploadBatch(requests(header, rows), metadata=metadata)
                elapsed = time.perf_counter() - started
                assert response.report.valid, response.report.errors[:3]
                assert response.report.rows_total == rows
                if service is not None:
                    cpu = cpu_seconds(service.pid) - cpu
                after = await backend_cpu(settings.database_url, service_start)
                db_cpu = sum(value - backends.get(pid, 0.0) for pid, value in after.items())
                label = "validate_only" if validate_only else "accept-and-store"
                print(
                    f"{label:>17}: {rows / elapsed:10,.0f} rows/s ({elapsed:.1f} s); CPU per "
                    f"row: service {cpu * 1e6 / rows:.1f} us, PostgreSQL {db_cpu * 1e6 / rows:.1f} "
                    f"us; load average {os.getloadavg()[0]:.1f}"
                )
                if service is not None:
                    phase = peak_rss_mb(service.pid)
                    peak = max(peak, phase)
                    pooled = ", ".join(f"{peak_rss_mb(pid):.0f}" for pid in pool) or "none"
                    print(
                        f"{'':>17}  peak RSS (VmHWM): service {phase:.0f} MB, validation "
                        f"processes {pooled} MB"
                    )
            if service is not None:
                print(f"service peak RSS (VmHWM): {peak:.0f} MB")
    finally:
        if service is not None:
            service.terminate()
            service.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--target", help="host:port of a running UploadService (no RSS then)")
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout to run the service from")
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.target, args.root))


if __name__ == "__main__":
    main()
