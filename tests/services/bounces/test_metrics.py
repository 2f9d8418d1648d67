"""The bounce receiver process serves /metrics after real work: every name and label value
the dashboard reads of it."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiosmtplib
import asyncpg

from credbatch.config import Settings
from credbatch.delivery import verp
from credbatch.devsinks.dsn import build_dsn
from tests.fixtures.issuance import arrange_batch
from tests.fixtures.observed import assert_serves_what_is_used
from tests.fixtures.processes import free_port
from tests.fixtures.scrape import stop, wait_for_sample
from tests.services.test_metrics import spawn

DOMAIN = "bounces.metrics.test"
KEY = "metrics-test-bounce-key-of-32-bytes-or-more"


async def _report(port: int, record: uuid.UUID, action: str, status: str) -> None:
    to = verp.address(KEY.encode(), DOMAIN, record)
    data = build_dsn(
        reporting_mta="mx.example.org",
        sender=to,
        recipient="holder@example.org",
        action=action,
        status=status,
        diagnostic=f"smtp; 250 {status} ok",
        original=b"Subject: x\r\n\r\n",
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=5)
            async with client:
                await client.sendmail("", [to], data)
            return
        except (aiosmtplib.SMTPConnectError, ConnectionError, OSError):
            assert time.monotonic() < deadline, "the receiver never answered"
            await asyncio.sleep(0.2)


async def test_bounce_process_counts_reports(settings: Settings, owner_pool: asyncpg.Pool) -> None:
    smtp_port, metrics_port = free_port(), free_port()
    arranged = await arrange_batch(owner_pool, 2, mediums=("EMAIL",), certificate=False)
    first, second = arranged.record_ids
    process = spawn(
        settings,
        "services.bounces",
        CREDBATCH_BOUNCE_DOMAIN=DOMAIN,
        CREDBATCH_BOUNCE_KEY=KEY,
        CREDBATCH_BOUNCE_PORT=str(smtp_port),
        CREDBATCH_METRICS_PORT=str(metrics_port),
    )
    try:
        await _report(smtp_port, first, "delivered", "2.0.0")
        await _report(smtp_port, second, "failed", "5.1.1")
        samples = await wait_for_sample(
            metrics_port,
            "credbatch_bounce_notifications_total",
            {
                "credbatch_bounce_channel": "email",
                "credbatch_bounce_kind": "bounced",
                "credbatch_bounce_outcome": "recorded",
            },
        )
        assert_serves_what_is_used(samples, "bounces")
    finally:
        stop(process)
