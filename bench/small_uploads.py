"""Small uploads benchmark: one-row batches from many clients against one uploads process.

Starts ``python -m services.uploads`` as its own process (as ``bench/upload.py`` does; or
``--root`` another checkout, for an A/B in one sitting) on a throw-away database of its own,
created and migrated by that checkout's migration runner and dropped at the end, creates a
schema with five attributes in a fresh tenant per client (a tenant runs at most a few uploads
at once), and lets ``--clients`` concurrent clients upload one-row batches (EMAIL, each with
its own request id, stored: not validate_only) for ``--seconds``. Prints uploads/s,
latency percentiles and the CPU per upload of the uploads process and of the PostgreSQL
backends it opened (utime + stime from /proc; the backends are those of application
``uploads`` on the database started after the service), and of the clients (this process),
which share the machine with them.

Two ways to load it. By default each client uploads again as soon as its last upload is
answered (a closed loop): the figure is the most the service answers, and the latency is what
20 clients queueing on it see; by Little's law their mean latency is then 20 / (uploads/s), so a
closed loop of 20 clients at 300 uploads/s cannot have a mean below 67 ms, whatever the service.
``--rate R`` offers R uploads/s in all instead (an open loop, as independent callers arrive):
each client starts its uploads at random (Poisson) times averaging R / clients a second, and each
latency runs from the time the upload was due, not the time it could start, so a service that
falls behind is charged for the wait it causes (no coordinated omission).
``--profile FILE`` runs the service under cProfile and writes its statistics there.

    python -m bench.small_uploads --clients 20 --seconds 15
    python -m bench.small_uploads --clients 20 --seconds 15 --rate 300
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc

from bench.claim_ab import MIGRATE_SCRIPT
from bench.issuance import with_database
from bench.upload import backend_cpu, cpu_seconds, create_schema, free_port, wait_ready
from credbatch.auth.tokens import mint_dev_token
from credbatch.config import Settings, load_settings
from credbatch.gen.common.v1 import medium_pb2
from credbatch.gen.uploads.v1 import uploads_service_pb2, uploads_service_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]


async def one_row(
    header: uploads_service_pb2.UploadBatchHeader, body: bytes
) -> AsyncIterator[uploads_service_pb2.UploadBatchRequest]:
    yield uploads_service_pb2.UploadBatchRequest(header=header)
    yield uploads_service_pb2.UploadBatchRequest(chunk=body)


async def client(
    stub: Any,
    metadata: tuple[tuple[str, str], ...],
    schema: str,
    until: float,
    latencies: list[float],
    rate: float | None = None,
) -> None:
    """Uploads one-row files until ``until``: back to back, or at Poisson times, ``rate`` a
    second on average."""
    n = 0
    due = time.perf_counter()
    while True:
        if rate is not None:
            due += random.expovariate(rate)
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        else:
            due = time.perf_counter()
        if due >= until:
            return
        n += 1
        holder = uuid.uuid4().hex
        body = (
            "email,name,age,born,score,level\r\n"
            f"{holder}@example.com,Holder {n},{18 + n % 70},1980-01-1{n % 10},{n}.25,Gold\r\n"
        ).encode()
        header = uploads_service_pb2.UploadBatchHeader(
            schema=schema,
            mediums=[medium_pb2.MEDIUM_EMAIL],
            filename="one.csv",
            request_id=str(uuid.uuid4()),
        )
        response = await stub.UploadBatch(one_row(header, body), metadata=metadata)
        latencies.append(time.perf_counter() - due)
        assert response.report.valid and response.batch.name


def _own_cpu() -> float:
    # This process's CPU (its gRPC threads included): the load generator shares the machine.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(
    clients: int, seconds: float, root: Path, profile_to: Path | None, rate: float | None
) -> None:
    base = load_settings()
    # A database of its own, new each run: one that earlier runs filled answers slower (this
    # server runs without autovacuum, so nothing analyzes or vacuums it), which the figures
    # would then measure. Its code (functions, triggers) is the tree's under test, applied by
    # that tree's own migration runner.
    name = f"credbatch_bench_small_{uuid.uuid4().hex[:12]}"
    settings = base.with_overrides(
        database_url=with_database(base.database_url, name),
        app_database_url=with_database(base.app_database_url, name),
    )
    subprocess.run(
        [sys.executable, "-c", MIGRATE_SCRIPT, settings.database_url],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=True,
    )
    try:
        await _measure(settings, clients, seconds, root, profile_to, rate)
    finally:
        conn = await asyncpg.connect(with_database(base.database_url, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


async def _measure(
    settings: Settings,
    clients: int,
    seconds: float,
    root: Path,
    profile_to: Path | None,
    rate: float | None,
) -> None:
    tenants = [uuid.uuid4() for _ in range(clients)]
    schemas = [await create_schema(settings, tenant) for tenant in tenants]
    port = free_port()
    env = {
        **os.environ,
        "CREDBATCH_DATABASE_URL": settings.database_url,
        "CREDBATCH_APP_DATABASE_URL": settings.app_database_url,
        "CREDBATCH_UPLOADS_PORT": str(port),
        "OTEL_SDK_DISABLED": "true",
        "PYTHONPATH": str(root),
    }
    service_start = time.time()
    profile = ["-m", "cProfile", "-o", str(profile_to)] if profile_to else []
    service = subprocess.Popen(
        [sys.executable, *profile, "-m", "services.uploads"],
        cwd=root,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    metadata = [
        (
            (
                "authorization",
                "Bearer "
                + mint_dev_token(
                    settings, tenant=tenant, sub="bench", roles=["issuer"], departments=["default"]
                ),
            ),
        )
        for tenant in tenants
    ]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await wait_ready(channel, service)
            stub = uploads_service_pb2_grpc.UploadServiceStub(channel)
            # Warm-up: the pool's connections, prepared statements, the schema's first use.
            warm = time.perf_counter() + 1.0
            pairs = list(zip(metadata, schemas, strict=True))
            await asyncio.gather(*(client(stub, md, schema, warm, []) for md, schema in pairs))
            latencies: list[float] = []
            client_before = _own_cpu()
            cpu_before = cpu_seconds(service.pid)
            backends = await backend_cpu(settings.database_url, service_start)
            started = time.perf_counter()
            until = started + seconds
            each = rate / clients if rate else None
            await asyncio.gather(
                *(client(stub, md, schema, until, latencies, each) for md, schema in pairs)
            )
            elapsed = time.perf_counter() - started
            cpu = cpu_seconds(service.pid) - cpu_before
            client_cpu = _own_cpu() - client_before
            after = await backend_cpu(settings.database_url, service_start)
            db_cpu = sum(value - backends.get(pid, 0.0) for pid, value in after.items())
        ms = sorted(x * 1000 for x in latencies)
        q = statistics.quantiles(ms, n=100)
        offered = f" offered {rate:,.0f}/s," if rate else " back to back,"
        print(
            f"{root.name}: {clients} clients,{offered} {len(ms)} one-row uploads in "
            f"{elapsed:.1f} s = "
            f"{len(ms) / elapsed:,.0f} uploads/s; p50 {q[49]:.1f} ms, p95 {q[94]:.1f} ms, "
            f"p99 {q[98]:.1f} ms; CPU per upload: uploads process {cpu * 1000 / len(ms):.2f} ms, "
            f"its PostgreSQL backends {db_cpu * 1000 / len(ms):.2f} ms, "
            f"the clients (this process) {client_cpu * 1000 / len(ms):.2f} ms; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
    finally:
        service.terminate()
        service.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout to run the service from")
    parser.add_argument("--profile", type=Path, help="write the service's cProfile stats here")
    parser.add_argument(
        "--rate", type=float, help="offer this many uploads/s in all (open loop; default: closed)"
    )
    args = parser.parse_args()
    if args.rate is not None and args.rate <= 0:
        parser.error("--rate must be positive")
    asyncio.run(run(args.clients, args.seconds, args.root, args.profile, args.rate))


if __name__ == "__main__":
    main()
