"""Benchmark: how many bounces and delivery reports a bounce receiver records per second.

Real ``python -m services.bounces`` processes (``--receivers``, each on its own port, as the
public endpoints' role) on a database of their own (created and migrated here); a batch of
``--records`` records stamped sent (ACCEPTED). ``--connections`` SMTP clients, each on one
reused connection, send one RFC 3464 report per record, spread over the receivers: one in
fifty a hard bounce, the rest delivery receipts. A report counts once the receiver answered
250 (recorded: its reply waits for the database). Prints the rate and checks that every
record got its report.

    python -m bench.bounces [--records 5000] [--connections 16] [--receivers 1]
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

import aiosmtplib
import asyncpg

from bench.fairness import _with_database, add_batch, add_tenant
from credbatch.config import load_settings
from credbatch.db.migrate import ensure_database, migrate
from credbatch.delivery import verp
from credbatch.devsinks.dsn import build_dsn

DATABASE = "credbatch_bench_bounces"
DOMAIN = "bounces.bench.test"
KEY = "bench-bounce-key-of-at-least-32-bytes!"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds of a running process (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _report(record: uuid.UUID, bounce: bool) -> tuple[str, bytes]:
    to = verp.address(KEY.encode(), DOMAIN, record)
    action, status = ("failed", "5.1.1") if bounce else ("delivered", "2.0.0")
    data = build_dsn(
        reporting_mta="mx.bench.test",
        sender=to,
        recipient="holder@example.org",
        action=action,
        status=status,
        diagnostic=f"smtp; {'550' if bounce else '250'} {status} <holder@example.org>",
        original=b"Subject: Your credential\r\nFrom: issuer@example.org\r\n\r\n",
    )
    return to, data


async def _connect(port: int, deadline: float) -> aiosmtplib.SMTP:
    while True:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
        try:
            await client.connect()
            return client
        except (aiosmtplib.SMTPConnectError, OSError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _client(port: int, work: asyncio.Queue[tuple[str, bytes]]) -> int:
    client = await _connect(port, time.monotonic() + 30)
    sent = 0
    try:
        while True:
            try:
                to, data = work.get_nowait()
            except asyncio.QueueEmpty:
                return sent
            await client.sendmail("", [to], data)
            sent += 1
    finally:
        await client.quit()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--receivers", type=int, default=1)
    args = parser.parse_args()
    settings = load_settings()
    owner_url = _with_database(settings.database_url, DATABASE)
    await ensure_database(owner_url)
    await migrate(owner_url)
    conn = await asyncpg.connect(owner_url)
    try:
        await conn.execute("TRUNCATE tenants CASCADE")
        tenant, schema = await add_tenant(conn)
        batch = await add_batch(conn, tenant, schema, args.records)
        await conn.execute("UPDATE records SET email_sent_at = now() WHERE batch_id = $1", batch)
        records = [r["id"] for r in await conn.fetch("SELECT id FROM records")]
    finally:
        await conn.close()
    reports = [_report(record, i % 50 == 7) for i, record in enumerate(records)]

    ports = [_free_port() for _ in range(args.receivers)]
    env = {
        **os.environ,
        "CREDBATCH_DATABASE_URL": owner_url,
        "CREDBATCH_PUBLIC_DATABASE_URL": _with_database(settings.public_database_url, DATABASE),
        "CREDBATCH_BOUNCE_DOMAIN": DOMAIN,
        "CREDBATCH_BOUNCE_KEY": KEY,
        "CREDBATCH_METRICS_PORT": "0",
        "OTEL_SDK_DISABLED": "true",
    }
    receivers = [
        subprocess.Popen(
            [sys.executable, "-m", "services.bounces"],
            env={**env, "CREDBATCH_BOUNCE_PORT": str(port)},
        )
        for port in ports
    ]
    try:
        # Connected (the receivers up) before the clock starts.
        for port in ports:
            warm = await _connect(port, time.monotonic() + 60)
            await warm.quit()
        work: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        for report in reports:
            work.put_nowait(report)
        load = os.getloadavg()[0]
        cpu_before = sum(_cpu_seconds(process.pid) for process in receivers)
        started = time.perf_counter()
        counts = await asyncio.gather(
            *(_client(ports[i % len(ports)], work) for i in range(args.connections))
        )
        took = time.perf_counter() - started
        # CPU the receivers spent on the reports: on a shared machine the wall-clock rate says
        # how much CPU this run was given, this what a report costs.
        cpu = sum(_cpu_seconds(process.pid) for process in receivers) - cpu_before
    finally:
        for process in receivers:
            process.terminate()
        for process in receivers:
            process.wait(30)
    conn = await asyncpg.connect(owner_url)
    try:
        states = dict(
            await conn.fetch("SELECT email_delivery, count(*) FROM records GROUP BY email_delivery")
        )
    finally:
        await conn.close()
    total = sum(counts)
    print(
        f"{total:,} reports over {args.connections} connections to {args.receivers} "
        f"receiver(s) in {took:.2f} s: {total / took:,.0f} notifications/s "
        f"(load average before: {load:.1f}, {os.cpu_count()} CPUs)"
    )
    print(
        f"receiver CPU: {cpu:.1f} s, {cpu / total * 1000:.2f} ms per report: "
        f"{total / cpu:,.0f} reports/s per fully used core"
    )
    print(f"records by email delivery: {states}")
    expected = {"BOUNCED": sum(1 for i in range(len(records)) if i % 50 == 7)}
    expected["DELIVERED"] = len(records) - expected["BOUNCED"]
    if states != expected:
        raise SystemExit(f"expected {expected}, got {states}")


if __name__ == "__main__":
    asyncio.run(main())
