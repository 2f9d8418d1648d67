"""Benchmark: bounces and SMS failures of a large batch, from the sink that makes each one to
the record that shows it.

A ``--records``-record EMAIL+SMS batch is uploaded through the real UploadService; one address
in fifty is at ``bounce.example`` (2 %) and one phone in a hundred ends in 13 (1 %). The
development sinks run in this process: the SMTP sink accepts every invitation, then bounces
those addresses (an RFC 3464 report to the invitation's VERP sender, through the real bounce
receiver, ``python -m services.bounces``); the SMS sink answers every message, then posts a
signed ``failed`` status callback for those phones to the real public endpoints'
``/sms/status``. The UploadService, BatchStatusService, public endpoints, bounce receiver,
outbox relay and issuance workers are processes of their own, on a database and a RabbitMQ
virtual host made for the run (and removed after it).

While the batch runs, and until every bounce and failure is recorded, a poller calls GetBatch
through gRPC every ``--interval`` seconds and reads the records' delivery states as the owner.
It prints:

- per bounce or failure, the time from the sink making it to its record's delivery state
  changing (``email_delivery_at`` / ``sms_delivery_at``, written in the recording
  transaction), and to the poller first seeing it: p50, p95, max;
- wrong records: any record seen BOUNCED or FAILED on a channel the sinks did not bounce or
  fail for it (at any poll), and any bounce or failure missing at the end;
- count violations: polls at which GetBatch's per-state counts did not add up to the batch's
  total, or ``bounced`` or ``delivered`` fell or exceeded the total or what was produced.

    python -m bench.delivery_funnel [--records 10000] [--workers 1] [--interval 0.2]
        [--name-prefix credbatch_bench_funnel]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

import asyncpg
import grpc
import httpx

from bench.issuance import (
    Processes,
    create_schema,
    csv_chunks,
    free_port,
    rabbitmqctl,
    requests,
    wait_consumers,
    with_database,
)
from credbatch.auth.tokens import mint_dev_token
from credbatch.config import Settings, load_settings
from credbatch.db.migrate import ensure_database, migrate
from credbatch.db.pool import create_pool
from credbatch.devsinks.sms import SmsSink
from credbatch.devsinks.smtp import SmtpSink
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2, batches_service_pb2_grpc
from credbatch.gen.common.v1 import medium_pb2
from credbatch.gen.uploads.v1 import uploads_service_pb2, uploads_service_pb2_grpc

BOUNCE_DOMAIN = "bounces.funnel.bench"
BOUNCING_DOMAIN = "bounce.example"
AREA_CODES = ("202", "212", "213", "312", "415", "617")
STATE_FIELDS = (
    "pending",
    "queued",
    "issued",
    "invited",
    "failed",
    "cancelled",
    "claimed",
    "revoked",
    "expired",
)


def bounces(i: int) -> bool:
    return i % 50 == 7


def fails(i: int) -> bool:
    return i % 100 == 13


def email(i: int) -> str:
    return f"holder{i}@{BOUNCING_DOMAIN if bounces(i) else 'example.com'}"


def phone(i: int) -> str:
    # Unique per row; the last two digits are i's, so "+1*13" is the failing 1 %.
    return f"+1{AREA_CODES[i // 10_000]}555{i % 10_000:04d}"


def holder_line(i: int) -> str:
    return f"{email(i)},{phone(i)},Holder {i},{i % 100},{'true' if i % 2 else 'false'}\r\n"


def percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"p50 {statistics.median(ordered) * 1000:,.0f} ms, p95 {p95 * 1000:,.0f} ms, "
        f"max {ordered[-1] * 1000:,.0f} ms"
    )


@dataclass
class Watch:
    """What the sinks produced and what the poller saw, keyed by (channel, recipient)."""

    produced: dict[tuple[str, str], float] = field(default_factory=dict)
    seen: dict[tuple[str, str], float] = field(default_factory=dict)
    changed: dict[tuple[str, str], float] = field(default_factory=dict)
    wrong: set[tuple[str, str]] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    polls: int = 0
    last_bounced: int = 0


async def poll(
    watch: Watch,
    stub: batches_service_pb2_grpc.BatchStatusServiceStub,
    metadata: tuple[tuple[str, str], ...],
    owner: asyncpg.Pool,
    batch_id: uuid.UUID,
    rows: int,
) -> batch_pb2.Batch:
    batch: batch_pb2.Batch = await cast(
        Awaitable[batch_pb2.Batch],
        stub.GetBatch(
            batches_service_pb2.GetBatchRequest(name=f"batches/{batch_id}"), metadata=metadata
        ),
    )
    now = time.time()
    # Taken once the answer is in: a bounce the sinks made while GetBatch ran may be counted.
    produced_now = len({to for _, to in watch.produced})
    watch.polls += 1
    counts = batch.record_counts
    states = sum(getattr(counts, name) for name in STATE_FIELDS)
    problems = []
    if states != batch.total_records or batch.total_records != rows:
        problems.append(f"states add up to {states} of {batch.total_records}")
    if not 0 <= counts.delivered <= rows:
        problems.append(f"delivered {counts.delivered}")
    if not watch.last_bounced <= counts.bounced <= min(rows, produced_now):
        problems.append(f"bounced {counts.bounced} (before {watch.last_bounced})")
    watch.last_bounced = max(watch.last_bounced, counts.bounced)
    if problems:
        watch.violations.append(f"poll {watch.polls}: " + "; ".join(problems))
    reports = await owner.fetch(
        "SELECT row_number - 1 AS i, email_delivery, email_delivery_at, sms_delivery,"
        " sms_delivery_at FROM records WHERE batch_id = $1"
        " AND (email_delivery IN ('BOUNCED', 'FAILED', 'DEFERRED', 'DELIVERED')"
        "  OR sms_delivery IN ('BOUNCED', 'FAILED', 'DEFERRED', 'DELIVERED'))",
        batch_id,
    )
    for report in reports:
        i = report["i"]
        for channel, state, at, expected, to in (
            ("email", report["email_delivery"], report["email_delivery_at"], bounces(i), email(i)),
            ("sms", report["sms_delivery"], report["sms_delivery_at"], fails(i), phone(i)),
        ):
            if state in (None, "ACCEPTED"):
                continue
            key = (channel, to)
            right = "BOUNCED" if channel == "email" else "FAILED"
            if not expected or state != right:
                watch.wrong.add(key)
                continue
            watch.seen.setdefault(key, now)
            watch.changed.setdefault(key, at.timestamp())
    return batch


async def run(args: argparse.Namespace) -> None:
    base: Settings = load_settings()
    suffix = uuid.uuid4().hex[:10]
    name = f"{args.name_prefix}_{suffix}"
    vhost = f"{args.name_prefix}_{suffix}"
    owner_url = with_database(base.database_url, name)
    await ensure_database(owner_url)
    await migrate(owner_url)
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    amqp_host = base.amqp_url.split("@")[-1].split("/")[0]
    ports = {key: free_port() for key in ("uploads", "batches", "public", "bounces")}
    public_url = f"http://127.0.0.1:{ports['public']}"
    smtp = SmtpSink(keep=False)
    sms = SmsSink(keep=False)
    await smtp.start()
    await sms.start()
    watch = Watch()
    smtp.handler.bounce_patterns = (f"*@{BOUNCING_DOMAIN}",)
    smtp.handler.bounce_domain = BOUNCE_DOMAIN
    smtp.handler.report_to = ("127.0.0.1", ports["bounces"])
    sms.state.bounce_patterns = ("+1*13",)

    def made(channel: str) -> Callable[[str, str], None]:
        def note(to: str, _: str) -> None:
            watch.produced.setdefault((channel, to), time.time())

        return note

    smtp.handler.on_report = made("email")
    sms.state.on_callback = made("sms")
    env = {
        **os.environ,
        "CREDBATCH_DATABASE_URL": owner_url,
        "CREDBATCH_APP_DATABASE_URL": with_database(base.app_database_url, name),
        "CREDBATCH_RELAY_DATABASE_URL": with_database(base.relay_database_url, name),
        "CREDBATCH_PUBLIC_DATABASE_URL": with_database(base.public_database_url, name),
        "CREDBATCH_SIGNER_DATABASE_URL": with_database(base.signer_database_url, name),
        "CREDBATCH_REFRESHER_DATABASE_URL": with_database(base.refresher_database_url, name),
        "CREDBATCH_AMQP_URL": f"amqp://guest:guest@{amqp_host}/{vhost}",
        "CREDBATCH_UPLOADS_PORT": str(ports["uploads"]),
        "CREDBATCH_BATCHES_PORT": str(ports["batches"]),
        "CREDBATCH_PUBLIC_PORT": str(ports["public"]),
        "CREDBATCH_PUBLIC_URL": public_url,
        "CREDBATCH_BOUNCE_PORT": str(ports["bounces"]),
        "CREDBATCH_BOUNCE_DOMAIN": BOUNCE_DOMAIN,
        "CREDBATCH_BOUNCE_KEY": secrets.token_urlsafe(32),
        "CREDBATCH_NONCE_KEY": secrets.token_urlsafe(32),
        "CREDBATCH_SMTP_PORT": str(smtp.port),
        "CREDBATCH_SMS_URL": sms.url,
        "CREDBATCH_SMS_TOKEN": sms.state.token,
        "CREDBATCH_SMS_ACCOUNT": sms.state.account,
        "CREDBATCH_KEK": base.kek or base64.b64encode(os.urandom(32)).decode(),
        "CREDBATCH_MAX_ROWS": str(max(args.records, base.max_rows)),
        "CREDBATCH_METRICS_PORT": "0",
        "OTEL_SDK_DISABLED": "true",
    }
    processes = Processes(env)
    owner = await create_pool(owner_url, max_size=2)
    app = await create_pool(with_database(base.app_database_url, name), max_size=2)
    try:
        for module in ("services.uploads", "services.batch_status", "services.public"):
            processes.start("-m", module)
        processes.start("-m", "services.bounces")
        processes.start("-m", "workers.relay")
        for _ in range(args.workers):
            processes.start("-m", "workers.issuance")
        await wait_consumers(vhost, args.workers)
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    await client.get(public_url + "/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        tenant = uuid.uuid4()
        schema, _ = await create_schema(app, tenant, certificate=False)
        token = mint_dev_token(
            base, tenant=tenant, sub="bench", roles=["issuer"], departments=["default"]
        )
        metadata = (("authorization", f"Bearer {token}"),)
        header = uploads_service_pb2.UploadBatchHeader(
            schema=schema,
            mediums=[medium_pb2.MEDIUM_EMAIL, medium_pb2.MEDIUM_SMS],
            filename="funnel.csv",
            request_id=str(uuid.uuid4()),
        )
        expected = {("email", email(i)) for i in range(args.records) if bounces(i)}
        expected |= {("sms", phone(i)) for i in range(args.records) if fails(i)}
        load = os.getloadavg()
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{ports['uploads']}") as uploads_channel,
            grpc.aio.insecure_channel(f"127.0.0.1:{ports['batches']}") as batches_channel,
        ):
            await asyncio.wait_for(uploads_channel.channel_ready(), 60)
            await asyncio.wait_for(batches_channel.channel_ready(), 60)
            started = time.monotonic()
            response = await uploads_service_pb2_grpc.UploadServiceStub(
                uploads_channel
            ).UploadBatch(
                requests(
                    header,
                    csv_chunks(args.records, "email,phone,name,score,passed\r\n", holder_line),
                ),
                metadata=metadata,
            )
            batch_id = uuid.UUID(response.batch.name.split("/")[-1])
            stub = batches_service_pb2_grpc.BatchStatusServiceStub(batches_channel)
            deadline = time.monotonic() + args.records / 20 + 120
            completed = 0.0
            while True:
                batch = await poll(watch, stub, metadata, owner, batch_id, args.records)
                if not completed and batch.state == batch_pb2.BATCH_STATE_COMPLETED:
                    completed = time.monotonic()
                if completed and set(watch.seen) >= expected:
                    break
                if time.monotonic() > deadline:
                    print("deadline passed before every bounce and failure was seen")
                    break
                await asyncio.sleep(args.interval)
        load_after = os.getloadavg()
    finally:
        processes.stop(list(processes.started))
        await smtp.stop()
        await sms.stop()
        await owner.close()
        await app.close()
        rabbitmqctl("delete_vhost", vhost)
        conn = await asyncpg.connect(with_database(base.database_url, "postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    missing = expected - set(watch.seen)
    unexpected_made = set(watch.produced) - expected
    to_change = [watch.changed[k] - watch.produced[k] for k in watch.seen if k in watch.produced]
    to_seen = [watch.seen[k] - watch.produced[k] for k in watch.seen if k in watch.produced]
    by_channel = {
        channel: [watch.changed[k] - watch.produced[k] for k in watch.seen if k[0] == channel]
        for channel in ("email", "sms")
    }
    over = sum(1 for v in to_change if v > 5.0)
    print(
        f"{args.records:,} records (EMAIL+SMS), {args.workers} worker(s); "
        f"{len(expected):,} bounces and failures expected "
        f"({sum(1 for k in expected if k[0] == 'email')} email, "
        f"{sum(1 for k in expected if k[0] == 'sms')} sms); {os.cpu_count()} CPUs, "
        f"load average at the upload {load[0]:.1f}/{load[1]:.1f}, at the end "
        f"{load_after[0]:.1f}/{load_after[1]:.1f}"
    )
    print(f"batch COMPLETED {completed - started:.1f} s after the upload started")
    print(f"sink -> record's delivery state changed: {percentiles(to_change)}; over 5 s: {over}")
    for channel, values in by_channel.items():
        print(f"  {channel:>5}: {percentiles(values)}")
    print(f"sink -> seen by the poller (every {args.interval} s): {percentiles(to_seen)}")
    print(
        f"wrong records: {len(watch.wrong)} seen on a record or channel not bounced; "
        f"{len(missing)} bounces/failures missing; {len(unexpected_made)} made by the sinks "
        f"for no bouncing recipient"
    )
    print(f"count violations in {watch.polls} GetBatch polls: {len(watch.violations)}")
    for violation in watch.violations[:10]:
        print(f"  {violation}")
    if watch.wrong or missing or unexpected_made or watch.violations:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between polls")
    parser.add_argument(
        "--name-prefix",
        default="credbatch_bench_funnel",
        help="prefix of the database and RabbitMQ virtual host made for the run",
    )
    args = parser.parse_args()
    if args.records > 10_000 * len(AREA_CODES):
        parser.error(f"at most {10_000 * len(AREA_CODES):,} records (unique phone numbers)")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
