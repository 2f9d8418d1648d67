"""Issuance test harness: sinks, the public app, arranged batches, workers (fixtures + helpers).

Imported by the conftest of tests/workers/issuance and tests/services/public.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import uvicorn
from aio_pika import Message

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.devsinks.sms import SmsSink
from credbatch.devsinks.smtp import SmtpSink
from credbatch.gen.jobs.v1 import issuance_job_pb2
from credbatch.messaging import (
    EXCHANGE,
    WORK_ROUTING_KEY,
    ConfirmingPublisher,
    OutgoingMessage,
    connect,
    declare_topology,
    trace_headers,
)
from services.public.app import create_app
from workers.issuance.main import serve

KEK = base64.b64encode(b"issuance-tests-kek-32-bytes-long").decode()
ATTRIBUTES = [
    {"name": "full_name", "type": "STRING", "required": True},
    {"name": "score", "type": "INTEGER", "required": True},
    {"name": "passed", "type": "BOOLEAN", "required": True},
    {"name": "born", "type": "DATE", "required": False},
]


@dataclass
class PublicServer:
    url: str
    server: uvicorn.Server
    task: asyncio.Task[None]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def public_server(db_settings: Settings) -> AsyncIterator[PublicServer]:
    """The public app on port 0 (its own pool), for the whole session."""
    pool = await create_pool(db_settings.app_database_url, max_size=4)
    # Bind first: the app builds absolute URLs from the public URL, which holds the port.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        # Tests fetch far more per second than one holder would: no practical rate limit.
        create_app(pool, url, rate=1e6, burst=1_000_000),
        log_level="warning",
        lifespan="off",
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield PublicServer(url, server, task)
    finally:
        server.should_exit = True
        await task
        await pool.close()


@dataclass
class Sinks:
    smtp: SmtpSink
    sms: SmsSink


@pytest_asyncio.fixture(loop_scope="session")
async def sinks() -> AsyncIterator[Sinks]:
    smtp = SmtpSink()
    sms = SmsSink()
    await smtp.start()
    await sms.start()
    try:
        yield Sinks(smtp, sms)
    finally:
        await smtp.stop()
        await sms.stop()


@pytest.fixture
def worker_settings(
    db_settings: Settings, fresh_amqp_url: str, sinks: Sinks, public_server: PublicServer
) -> Settings:
    """Settings of a worker for one test: its own vhost, the sinks, short retry delays."""
    return db_settings.with_overrides(
        amqp_url=fresh_amqp_url,
        smtp_port=sinks.smtp.port,
        sms_url=sinks.sms.url,
        public_url=public_server.url,
        kek=KEK,
        retry_delays=(0.2, 0.4),
        max_attempts=4,
        grace_seconds=5.0,
        worker_prefetch=100,
        worker_concurrency=32,
    )


def worker_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CREDBATCH_DATABASE_URL=settings.database_url,
        CREDBATCH_APP_DATABASE_URL=settings.app_database_url,
        CREDBATCH_AMQP_URL=settings.amqp_url,
        CREDBATCH_SMTP_HOST=settings.smtp_host,
        CREDBATCH_SMTP_PORT=str(settings.smtp_port),
        CREDBATCH_SMS_URL=settings.sms_url,
        CREDBATCH_PUBLIC_URL=settings.public_url,
        CREDBATCH_KEK=settings.kek or "",
        CREDBATCH_RETRY_DELAYS=",".join(str(d) for d in settings.retry_delays),
        CREDBATCH_MAX_ATTEMPTS=str(settings.max_attempts),
        CREDBATCH_GRACE_SECONDS=str(settings.grace_seconds),
        OTEL_SDK_DISABLED="true",
    )
    return env


def spawn_worker(settings: Settings) -> subprocess.Popen[bytes]:
    """``python -m workers.issuance`` as a separate process."""
    return subprocess.Popen(
        [sys.executable, "-m", "workers.issuance"],
        env=worker_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=None,  # inherited: pytest captures it at the fd level
    )


async def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    """Signal the process and wait without blocking the loop (the sinks run on it)."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return await asyncio.to_thread(process.wait, 20)
    except subprocess.TimeoutExpired:
        process.kill()
        return await asyncio.to_thread(process.wait)


@contextlib.asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[None]:
    """The worker's ``serve`` in this event loop (so its spans reach the test exporter)."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@dataclass
class Arranged:
    tenant_id: uuid.UUID
    batch_id: uuid.UUID
    record_ids: list[uuid.UUID]
    rows: list[dict[str, Any]] = field(default_factory=list)


def holder_row(i: int, domain: str = "example.test") -> dict[str, Any]:
    return {
        "email": f"holder{i}@{domain}",
        "phone": f"+1415555{i:04d}",
        "attributes": {
            "full_name": f"Holder Number {i}",
            "score": 50 + i % 50,
            "passed": i % 3 != 0,
            "born": date(1990, 1, 1 + i % 28).isoformat(),
        },
    }


async def arrange_batch(
    owner_pool: asyncpg.Pool,
    count: int,
    *,
    mediums: Sequence[str] = ("EMAIL", "SMS"),
    certificate: bool = True,
    tenant_id: uuid.UUID | None = None,
) -> Arranged:
    """A tenant (unless given), schema, templates and a QUEUED batch of ``count`` records."""
    tenant_id = tenant_id or uuid.uuid4()
    schema_id, batch_id = uuid.uuid4(), uuid.uuid4()
    email_id, sms_id, cert_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # A domain of its own per batch: a sink may also receive mail for other tests' records
    # (a relay publishes every tenant's outbox), and those must not be taken for this batch's.
    domain = f"b{batch_id.hex[:12]}.example.test"
    rows = [holder_row(i, domain) for i in range(count)]
    record_ids = [uuid.uuid4() for _ in rows]
    async with owner_pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING", tenant_id)
        await conn.execute(
            "INSERT INTO credential_schemas (tenant_id, id, display_name, created_by)"
            " VALUES ($1, $2, $3, 'test')",
            tenant_id,
            schema_id,
            f"Course {schema_id}",
        )
        await conn.execute(
            "INSERT INTO credential_schema_versions (tenant_id, schema_id, version, attributes,"
            " requires_certificate, validity_seconds, created_by)"
            " VALUES ($1, $2, 1, $3, $4, 86400, 'test')",
            tenant_id,
            schema_id,
            ATTRIBUTES,
            certificate,
        )
        await conn.execute(
            "INSERT INTO email_templates (tenant_id, id, display_name, subject, html_body,"
            " text_body, created_by) VALUES ($1, $2, 'mail', $3, $4, $5, 'test')",
            tenant_id,
            email_id,
            "Credential for {{ full_name }}",
            '<p>Dear {{ full_name }}, <a href="{{ claim_url }}">claim</a>'
            # Cred_URL is a placeholder only of schemas that require a certificate.
            + (' <a href="{{ Cred_URL }}">certificate</a>' if certificate else "")
            + "</p>",
            "Dear {{ full_name }}, claim: {{ claim_url }}"
            + (" certificate: {{ Cred_URL }}" if certificate else ""),
        )
        await conn.execute(
            "INSERT INTO sms_templates (tenant_id, id, display_name, body, created_by)"
            " VALUES ($1, $2, 'sms', $3, 'test')",
            tenant_id,
            sms_id,
            "{{ full_name }}, your credential: {{ claim_url }}",
        )
        await conn.execute(
            "INSERT INTO certificate_templates (tenant_id, id, display_name, title, body,"
            " created_by) VALUES ($1, $2, 'cert', $3, $4, 'test')",
            tenant_id,
            cert_id,
            "Certificate of completion",
            "This certifies that {{ full_name }} scored {{ score }} points.",
        )
        await conn.execute(
            "INSERT INTO batches (tenant_id, id, schema_id, schema_version, mediums,"
            " email_template_id, sms_template_id, certificate_template_id, creator,"
            " department, total_records, state)"
            " VALUES ($1, $2, $3, 1, $4, $5, $6, $7, 'tester', 'default', $8, 'QUEUED')",
            tenant_id,
            batch_id,
            schema_id,
            list(mediums),
            email_id if "EMAIL" in mediums else None,
            sms_id if "SMS" in mediums else None,
            cert_id if certificate else None,
            count,
        )
        await conn.execute(
            "INSERT INTO records (tenant_id, id, batch_id, row_number, state, email, phone,"
            " attributes, queued_at)"
            " SELECT $1, u.id, $2, u.n::int, 'QUEUED', u.email, u.phone, u.attributes, now()"
            " FROM unnest($3::uuid[], $4::text[], $5::text[], $6::jsonb[])"
            " WITH ORDINALITY AS u(id, email, phone, attributes, n)",
            tenant_id,
            batch_id,
            record_ids,
            [r["email"] if "EMAIL" in mediums else None for r in rows],
            [r["phone"] if "SMS" in mediums else None for r in rows],
            [r["attributes"] for r in rows],
        )
    return Arranged(tenant_id, batch_id, record_ids, rows)


def job_body(tenant_id: uuid.UUID, batch_id: uuid.UUID, record_id: uuid.UUID) -> bytes:
    return issuance_job_pb2.IssuanceJob(
        tenant_id=str(tenant_id), batch_id=str(batch_id), record_id=str(record_id), attempt=1
    ).SerializeToString()


async def publish_jobs(settings: Settings, arranged: Arranged) -> None:
    """One job per record, published with confirms like the relay does."""
    connection = await connect(settings)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, settings)
        publisher = ConfirmingPublisher(channel)
        messages = [
            OutgoingMessage(
                routing_key=WORK_ROUTING_KEY,
                body=job_body(arranged.tenant_id, arranged.batch_id, record_id),
                message_id=str(record_id),
                headers=trace_headers.inject(),
                exchange=EXCHANGE,
            )
            for record_id in arranged.record_ids
        ]
        for start in range(0, len(messages), 500):
            await publisher.publish_many(messages[start : start + 500], timeout=10)
    finally:
        await connection.close()


async def publish_raw(
    settings: Settings, body: bytes, headers: dict[str, Any] | None = None
) -> None:
    connection = await connect(settings)
    try:
        channel = await connection.channel(publisher_confirms=True)
        topology = await declare_topology(channel, settings)
        await topology.exchange.publish(
            Message(body, headers=headers or {}), WORK_ROUTING_KEY, mandatory=True
        )
    finally:
        await connection.close()


async def wait_for_batch(owner_pool: asyncpg.Pool, batch_id: uuid.UUID, timeout: float = 60) -> str:
    """Poll until the batch is terminal; returns its state."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        state = await owner_pool.fetchval("SELECT state FROM batches WHERE id = $1", batch_id)
        if state in ("COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED", "CANCELLED"):
            return str(state)
        if loop.time() > deadline:
            counts = await owner_pool.fetch(
                "SELECT state, count(*) FROM records WHERE batch_id = $1 GROUP BY state",
                batch_id,
            )
            raise AssertionError(f"batch still {state} after {timeout}s: {counts}")
        await asyncio.sleep(0.1)


async def record_states(owner_pool: asyncpg.Pool, batch_id: uuid.UUID) -> dict[str, int]:
    rows = await owner_pool.fetch(
        "SELECT state, count(*) AS n FROM records WHERE batch_id = $1 GROUP BY state", batch_id
    )
    return {row["state"]: row["n"] for row in rows}
