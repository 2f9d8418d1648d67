"""A bounce of an invitation that a correction replaced, arriving late, against the real worker,
relay, bounce receiver and sinks: each send's VERP token names its send, so the old bounce is
recorded as stale and the corrected invitation keeps its own state."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiosmtplib
import asyncpg
from google.protobuf import field_mask_pb2

from credbatch.config import Settings
from credbatch.delivery import verp
from credbatch.devsinks.dsn import build_dsn
from credbatch.gen.batches.v1 import batches_service_pb2
from services.bounces.main import start_server
from tests.fixtures.grpc import bearer
from tests.fixtures.issuance import (
    Sinks,
    arrange_batch,
    publish_jobs,
    running_worker,
    wait_for_batch,
)
from tests.services.batch_status.test_commands_with_workers import running_relay
from tests.services.batch_status.test_resend import wait_for_mails

DOMAIN = "bounces.stale.test"
KEY = "stale-bounce-test-key-of-32-bytes-or-more"


async def _email_delivery(
    owner_pool: asyncpg.Pool, record_id: uuid.UUID, wanted: str, timeout: float = 30
) -> asyncpg.Record:
    """The record's email delivery columns once its state is ``wanted``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        row: asyncpg.Record = await owner_pool.fetchrow(
            "SELECT email, email_send, email_delivery, email_delivery_code FROM records"
            " WHERE id = $1",
            record_id,
        )
        if row["email_delivery"] == wanted:
            return row
        assert loop.time() < deadline, dict(row)
        await asyncio.sleep(0.1)


async def test_a_late_bounce_of_a_replaced_send_does_not_mark_the_new_one(
    batches_stub: Any,
    settings: Settings,
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    public_pool: asyncpg.Pool,
    sinks: Sinks,
) -> None:
    bouncing = worker_settings.with_overrides(bounce_domain=DOMAIN, bounce_key=KEY)
    arranged = await arrange_batch(owner_pool, 2, mediums=("EMAIL",), certificate=False)
    typo = arranged.rows[0]["email"]
    record_id = arranged.record_ids[0]
    server, _ = await start_server(bouncing, public_pool, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sinks.smtp.handler.bounce_patterns = (typo,)
    sinks.smtp.handler.bounce_domain = DOMAIN
    sinks.smtp.handler.report_to = ("127.0.0.1", port)
    sinks.smtp.handler.receipts = True
    md = bearer(settings, arranged.tenant_id, "root", ["org_admin"])
    try:
        await publish_jobs(bouncing, arranged)
        async with running_worker(bouncing), running_relay(bouncing):
            assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED"
            first = await _email_delivery(owner_pool, record_id, "BOUNCED")
            assert (first["email_send"], first["email_delivery_code"]) == (0, "5.1.1")

            corrected = f"fixed-{uuid.uuid4().hex[:12]}@example.org"
            await batches_stub.UpdateRecordContact(
                batches_service_pb2.UpdateRecordContactRequest(
                    name=f"batches/{arranged.batch_id}/records/{record_id}",
                    email=corrected,
                    update_mask=field_mask_pb2.FieldMask(paths=["email"]),
                ),
                metadata=md,
            )
            await wait_for_mails(sinks, corrected, 1)
            # The new invitation left as send 1: the sink's receipt, sent to its envelope
            # sender, is recorded (a receipt naming send 0 would be stale).
            second = await _email_delivery(owner_pool, record_id, "DELIVERED")
            assert (second["email"], second["email_send"]) == (corrected, 1)

            # The first invitation's bounce again, as a relay that retried it would send it
            # late: accepted (250), recorded nowhere.
            old = verp.address(KEY.encode(), DOMAIN, record_id, 0)
            late = build_dsn(
                reporting_mta="mx.example.org",
                sender=old,
                recipient=typo,
                action="failed",
                status="5.1.1",
                diagnostic="smtp; 550 5.1.1 unknown user",
                original=b"Subject: invitation\r\n\r\n",
            )
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=10)
            async with client:
                errors, reply = await client.sendmail("", [old], late)
            assert not errors and reply.startswith("2.0.0"), reply
            after = await _email_delivery(owner_pool, record_id, "DELIVERED")
            assert after["email_delivery_code"] == "2.0.0"
            # The same report for the current send is recorded: only the send differs.
            current = verp.address(KEY.encode(), DOMAIN, record_id, 1)
            async with client:
                await client.sendmail("", [current], late)
            await _email_delivery(owner_pool, record_id, "BOUNCED")
    finally:
        server.close()
