"""Benchmark: small batches beside a big one, end to end (uploads, relay, 2 workers, SMTP).

Runs, as separate processes on this machine as in production, the UploadService, one outbox
relay (default caps), ``--workers`` issuance workers and the local SMTP sink, on a database
and RabbitMQ virtual host of their own. Then:

1. solo: tenant A uploads a ``--big``-row EMAIL batch; records/s from accepted to COMPLETED;
   then the database is vacuumed, as autovacuum would have done meanwhile;
2. beside: A uploads the same again; while it runs, every ``--every`` seconds a ``--small``-row
   batch is uploaded, alternately by another tenant and by A itself; prints each small batch's
   time from accepted to COMPLETED (p50/p95/max per kind) and the big batch's records/s as a
   share of its solo figure.

    python -m bench.fairness_e2e [--big 20000] [--small 10] [--every 1.5] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import tempfile
import time
import uuid
from dataclasses import dataclass

import asyncpg
import grpc

from bench.issuance import (
    Processes,
    backends_cpu,
    cpu_snapshot,
    create_schema,
    csv_chunks,
    database_backends,
    external_pids,
    free_port,
    rabbitmqctl,
    requests,
    wait_completed,
    with_database,
)
from credbatch.auth.tokens import mint_dev_token
from credbatch.config import Settings, load_settings
from credbatch.db.migrate import ensure_database, migrate
from credbatch.db.pool import create_pool
from credbatch.gen.common.v1 import medium_pb2
from credbatch.gen.uploads.v1 import uploads_service_pb2, uploads_service_pb2_grpc


@dataclass
class Tenant:
    id: uuid.UUID
    schema: str
    token: str


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def upload(
    stub: uploads_service_pb2_grpc.UploadServiceAsyncStub, tenant: Tenant, rows: int
) -> tuple[uuid.UUID, float]:
    """Upload a ``rows``-row EMAIL batch; returns its id and when it was accepted."""
    header = uploads_service_pb2.UploadBatchHeader(
        schema=tenant.schema,
        mediums=[medium_pb2.MEDIUM_EMAIL],
        filename="bench.csv",
        request_id=str(uuid.uuid4()),
    )
    response = await stub.UploadBatch(
        requests(header, csv_chunks(rows)), metadata=(("authorization", f"Bearer {tenant.token}"),)
    )
    return uuid.UUID(response.batch.name.split("/")[-1]), time.monotonic()


async def run(big: int, small: int, every: float, workers: int) -> None:
    base: Settings = load_settings()
    name = f"credbatch_bench_{uuid.uuid4().hex[:12]}"
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
    uploads_port, smtp_port = free_port(), free_port()
    env = {
        **os.environ,
        "CREDBATCH_DATABASE_URL": settings.database_url,
        "CREDBATCH_APP_DATABASE_URL": settings.app_database_url,
        "CREDBATCH_AMQP_URL": f"amqp://guest:guest@{amqp_host}/{vhost}",
        "CREDBATCH_UPLOADS_PORT": str(uploads_port),
        "CREDBATCH_SMTP_PORT": str(smtp_port),
        "CREDBATCH_KEK": settings.kek or base64.b64encode(os.urandom(32)).decode(),
        "CREDBATCH_MAX_ROWS": str(max(big, settings.max_rows)),
        "OTEL_SDK_DISABLED": "true",
    }
    processes = Processes(env)
    pool = await create_pool(settings.app_database_url, max_size=2)
    owner = await create_pool(settings.database_url, max_size=4)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    try:
        mail_dir = tempfile.mkdtemp(prefix="credbatch-bench-mail-")
        sink = processes.start(
            "-m", "credbatch.devsinks.smtp", "--port", str(smtp_port), "--dir", mail_dir
        )
        uploads = processes.start("-m", "services.uploads")
        relay = processes.start("-m", "workers.relay")
        started = [processes.start("-m", "workers.issuance") for _ in range(workers)]
        groups = {
            "workers": [p.pid for p in started],
            "relay": [relay.pid],
            "uploads": [uploads.pid],
            "smtp sink": [sink.pid],
            **external_pids(),
        }

        def cpu_line(before: dict[str, float], backends: dict[int, float], records: int) -> str:
            """CPU ms per record issued in a phase, by component and for the machine."""
            after = cpu_snapshot(groups)
            parts = [
                f"{component} {(after[component] - before[component]) * 1000 / records:.2f}"
                for component in ("workers", "relay", "uploads", "smtp sink", "rabbitmq")
            ]
            database = backends_cpu(backends, database_backends(name))
            parts.append(f"postgres backends {database * 1000 / records:.2f}")
            busy = after["machine busy"] - before["machine busy"]
            return f"  CPU ms per record: {', '.join(parts)}; machine {busy * 1000 / records:.2f}"

        async def tenant() -> Tenant:
            tenant_id = uuid.uuid4()
            schema, _ = await create_schema(pool, tenant_id, certificate=False)
            token = mint_dev_token(
                settings, tenant=tenant_id, sub="bench", roles=["issuer"], departments=["default"]
            )
            return Tenant(tenant_id, schema, token)

        a, b = await tenant(), await tenant()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{uploads_port}") as channel:
            await asyncio.wait_for(channel.channel_ready(), 30)
            await asyncio.sleep(2)  # the workers connect and declare
            stub = uploads_service_pb2_grpc.UploadServiceStub(channel)

            before, backends = cpu_snapshot(groups), database_backends(name)
            batch, accepted = await upload(stub, a, big)
            _published, done = await wait_completed(owner, batch, timeout=big / 20 + 60)
            solo = big / (done - accepted)
            print(
                f"solo: {big:,} rows in {done - accepted:.1f} s = {solo:,.0f} records/s "
                f"(load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
            print(cpu_line(before, backends, big), flush=True)
            # The solo phase left every record updated several times; with autovacuum off (as
            # on this machine's server) the second phase would pay for its dead rows, which in
            # production autovacuum removes as they come. Both phases start clean.
            await owner.execute("VACUUM ANALYZE")

            before, backends = cpu_snapshot(groups), database_backends(name)
            batch, accepted = await upload(stub, a, big)
            big_done = asyncio.create_task(wait_completed(owner, batch, timeout=big / 20 + 60))
            smalls: list[asyncio.Task[tuple[str, float]]] = []

            async def one_small(kind: str, who: Tenant) -> tuple[str, float]:
                small_batch, small_accepted = await upload(stub, who, small)
                _p, small_done = await wait_completed(owner, small_batch, timeout=120)
                return kind, small_done - small_accepted

            turn = 0
            await asyncio.sleep(every)
            while not big_done.done():
                kind, who = ("other tenant", b) if turn % 2 == 0 else ("same tenant", a)
                smalls.append(asyncio.create_task(one_small(kind, who)))
                turn += 1
                await asyncio.wait({big_done}, timeout=every)
            _published, done = await big_done
            beside = big / (done - accepted)
            results = await asyncio.gather(*smalls)
            cpu_beside = cpu_line(before, backends, big + small * len(results))
        print(
            f"beside: {big:,} rows in {done - accepted:.1f} s = {beside:,.0f} records/s, "
            f"{beside / solo:.0%} of solo (load {os.getloadavg()[0]:.1f})",
            flush=True,
        )
        print(cpu_beside, flush=True)
        for kind in ("other tenant", "same tenant"):
            times = [t for k, t in results if k == kind]
            if times:
                print(
                    f"  {small}-row batches of the {kind} ({len(times)}): "
                    f"p50 {percentile(times, 0.5):.2f} s, p95 {percentile(times, 0.95):.2f} s, "
                    f"max {max(times):.2f} s",
                    flush=True,
                )
    finally:
        processes.stop(list(processes.started))
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
    parser.add_argument("--big", type=int, default=20_000)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--every", type=float, default=1.5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(run(args.big, args.small, args.every, args.workers))


if __name__ == "__main__":
    main()
