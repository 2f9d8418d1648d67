"""The whole loop: the worker sends with VERP senders and SMS status callbacks, the sinks
bounce some recipients and confirm the others, the bounce receiver and the public endpoint
record each report on its own record."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid

import asyncpg

from credbatch.batches.repository import get_batch
from credbatch.config import Settings
from credbatch.tenancy import service_scope, tenant_transaction
from services.batch_status.report import report_chunks
from services.bounces.main import start_server
from tests.fixtures.batches import record_states
from tests.fixtures.issuance import (
    Sinks,
    arrange_batch,
    publish_jobs,
    running_worker,
    wait_for_batch,
)

BOUNCE_DOMAIN = "bounces.credbatch.test"
BOUNCE_KEY = "bounce-key-for-the-tests-32-bytes-at-least"
COUNT = 40
BOUNCING = {3, 17, 29}  # rows whose email bounces
FAILING = {5, 17}  # rows whose SMS fails


async def _settled(owner_pool: asyncpg.Pool, batch_id: uuid.UUID) -> list[asyncpg.Record]:
    """The records once no channel is ACCEPTED any more (every report arrived)."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        rows: list[asyncpg.Record] = await owner_pool.fetch(
            "SELECT row_number, state, email_delivery, email_delivery_code,"
            " email_delivery_diagnostic, sms_delivery, sms_delivery_code,"
            " (SELECT s.message_id FROM record_sends s WHERE s.record_id = r.id"
            "  AND s.medium = 'SMS') AS sms_message_sid"
            " FROM records r WHERE batch_id = $1 ORDER BY row_number",
            batch_id,
        )
        waiting = [r for r in rows if "ACCEPTED" in (r["email_delivery"], r["sms_delivery"])]
        if not waiting:
            return rows
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{len(waiting)} records still without a report")
        await asyncio.sleep(0.1)


async def test_bounces_and_receipts_land_on_their_records(
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    public_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    sinks: Sinks,
) -> None:
    settings = worker_settings.with_overrides(bounce_domain=BOUNCE_DOMAIN, bounce_key=BOUNCE_KEY)
    arranged = await arrange_batch(owner_pool, COUNT)
    server, _ = await start_server(settings, public_pool, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    rows = arranged.rows
    sinks.smtp.handler.bounce_patterns = tuple(rows[i]["email"] for i in BOUNCING)
    sinks.smtp.handler.bounce_domain = BOUNCE_DOMAIN
    sinks.smtp.handler.report_to = ("127.0.0.1", port)
    sinks.smtp.handler.receipts = True
    sinks.sms.state.bounce_patterns = tuple(rows[i]["phone"] for i in FAILING)
    sinks.sms.state.receipts = True
    await owner_pool.execute(
        "INSERT INTO webhook_endpoints (tenant_id, id, url, event_types)"
        " VALUES ($1, $2, 'https://hooks.example/x', ARRAY['record.bounced'])",
        arranged.tenant_id,
        uuid.uuid4(),
    )
    try:
        await publish_jobs(settings, arranged)
        async with running_worker(settings):
            assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED"
            records = await _settled(owner_pool, arranged.batch_id)
    finally:
        server.close()
    # Bounces and receipts change no record's state.
    assert await record_states(owner_pool, arranged.batch_id) == {"INVITED": COUNT}
    for record in records:
        i = record["row_number"] - 1
        if i in BOUNCING:
            assert (record["email_delivery"], record["email_delivery_code"]) == ("BOUNCED", "5.1.1")
            diagnostic = record["email_delivery_diagnostic"]
            assert "Recipient address rejected" in diagnostic and "@" not in diagnostic
        else:
            assert (record["email_delivery"], record["email_delivery_code"]) == (
                "DELIVERED",
                "2.0.0",
            )
        if i in FAILING:
            assert (record["sms_delivery"], record["sms_delivery_code"]) == ("FAILED", "30003")
        else:
            assert (record["sms_delivery"], record["sms_delivery_code"]) == ("DELIVERED", None)
        assert record["sms_message_sid"].startswith("SM")
    # The sink reports only to envelope senders of the bounce domain: every message had one.
    assert sinks.smtp.handler.reports_sent == COUNT
    assert sorted(status for _, _, status in sinks.sms.state.callbacks_answered) == [200] * COUNT

    # GetBatch's counts: a record counts as delivered when one invitation arrived, as bounced
    # when one bounced or failed (row 17: both of its invitations failed).
    async with tenant_transaction(app_pool, service_scope(arranged.tenant_id)) as conn:
        view = await get_batch(conn, arranged.batch_id)
    assert view is not None
    assert (view.counts.invited, view.counts.delivered, view.counts.bounced) == (COUNT, 39, 4)
    # Another tenant, as the application role, sees neither the batch nor its counts.
    async with tenant_transaction(app_pool, service_scope(uuid.uuid4())) as conn:
        assert await get_batch(conn, arranged.batch_id) is None

    # The report's columns.
    report = b"".join(
        [
            chunk
            async for chunk in report_chunks(
                app_pool, service_scope(arranged.tenant_id), arranged.batch_id, [], "http://p"
            )
        ]
    )
    rows_out = {int(r["row_number"]) - 1: r for r in csv.DictReader(io.StringIO(report.decode()))}
    assert (rows_out[3]["email_delivery"], rows_out[3]["delivery_code"]) == (
        "DELIVERY_STATE_BOUNCED",
        "5.1.1",
    )
    assert (rows_out[5]["sms_delivery"], rows_out[5]["delivery_code"]) == (
        "DELIVERY_STATE_FAILED",
        "30003",
    )
    assert (rows_out[0]["email_delivery"], rows_out[0]["sms_delivery"]) == (
        "DELIVERY_STATE_DELIVERED",
        "DELIVERY_STATE_DELIVERED",
    )

    # record.bounced, once per bounced or failed invitation, naming its channel.
    events = await owner_pool.fetch(
        "SELECT payload FROM webhook_events WHERE tenant_id = $1 AND type = 'record.bounced'",
        arranged.tenant_id,
    )
    bounced = sorted(
        (e["payload"]["data"]["row_number"] - 1, e["payload"]["data"]["channel"]) for e in events
    )
    assert bounced == sorted([(i, "email") for i in BOUNCING] + [(i, "sms") for i in FAILING])
