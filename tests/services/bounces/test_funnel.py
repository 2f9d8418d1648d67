"""A batch in which 2 % of the addresses bounce and 1 % of the phones fail, watched while it
runs: each bounce and failure lands on its own record's channel and on no other, and the
batch's counts add up to its size at every poll (``bench/delivery_funnel.py`` measures the
same loop at 10,000 records, with its latencies)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from credbatch.batches.model import RecordCounts, RecordState
from credbatch.batches.repository import get_batch
from credbatch.config import Settings
from credbatch.tenancy import service_scope, tenant_transaction
from services.bounces.main import start_server
from tests.fixtures.issuance import Sinks, arrange_batch, publish_jobs, running_worker

BOUNCE_DOMAIN = "bounces.funnel.test"
BOUNCE_KEY = "funnel-test-bounce-key-of-32-bytes-or-more"
COUNT = 500
BOUNCING = frozenset(range(7, COUNT, 50))  # 10 addresses: 2 %
FAILING = frozenset(range(13, COUNT, 100))  # 5 phones: 1 %


def state_sum(counts: RecordCounts) -> int:
    return sum(counts.of(state) for state in RecordState)


async def _misplaced(
    owner_pool: asyncpg.Pool, batch_id: uuid.UUID
) -> tuple[set[int], set[int], list[str]]:
    """The rows whose email bounced and whose SMS failed so far, and every report found on
    a record or channel it does not belong to."""
    rows = await owner_pool.fetch(
        "SELECT row_number - 1 AS i, email_delivery, sms_delivery FROM records"
        " WHERE batch_id = $1 AND (email_delivery NOT IN ('ACCEPTED')"
        " OR sms_delivery NOT IN ('ACCEPTED'))",
        batch_id,
    )
    bounced, failed, wrong = set(), set(), []
    for row in rows:
        i, email, sms = row["i"], row["email_delivery"], row["sms_delivery"]
        if email == "BOUNCED":
            bounced.add(i)
        if sms == "FAILED":
            failed.add(i)
        if email not in (None, "ACCEPTED") and (email != "BOUNCED" or i not in BOUNCING):
            wrong.append(f"row {i}: email {email}")
        if sms not in (None, "ACCEPTED") and (sms != "FAILED" or i not in FAILING):
            wrong.append(f"row {i}: sms {sms}")
    return bounced, failed, wrong


async def test_each_bounce_and_failure_on_its_own_record_and_counts_always_add_up(
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    public_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    sinks: Sinks,
) -> None:
    settings = worker_settings.with_overrides(bounce_domain=BOUNCE_DOMAIN, bounce_key=BOUNCE_KEY)
    arranged = await arrange_batch(owner_pool, COUNT, certificate=False)
    rows = arranged.rows
    server, _ = await start_server(settings, public_pool, "127.0.0.1", 0)
    sinks.smtp.handler.bounce_patterns = tuple(rows[i]["email"] for i in BOUNCING)
    sinks.smtp.handler.bounce_domain = BOUNCE_DOMAIN
    sinks.smtp.handler.report_to = ("127.0.0.1", server.sockets[0].getsockname()[1])
    sinks.sms.state.bounce_patterns = tuple(rows[i]["phone"] for i in FAILING)
    produced: list[tuple[str, str]] = []
    sinks.smtp.handler.on_report = lambda to, action: produced.append((to, action))
    sinks.sms.state.on_callback = lambda to, status: produced.append((to, status))

    scope = service_scope(arranged.tenant_id)
    polls = 0
    bounced_seen = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 180
    try:
        await publish_jobs(settings, arranged)
        async with running_worker(settings):
            while True:
                async with tenant_transaction(app_pool, scope) as conn:
                    view = await get_batch(conn, arranged.batch_id)
                assert view is not None
                polls += 1
                counts = view.counts
                assert state_sum(counts) == view.total == COUNT, counts
                assert 0 <= counts.delivered <= COUNT
                # No resend here: a bounce, once counted, stays counted.
                assert bounced_seen <= counts.bounced <= COUNT, counts
                bounced_seen = counts.bounced
                bounced, failed, wrong = await _misplaced(owner_pool, arranged.batch_id)
                assert not wrong, wrong
                if view.terminal and bounced == BOUNCING and failed == FAILING:
                    break
                assert loop.time() < deadline, (
                    f"after {polls} polls: {counts}; bounced {sorted(bounced)}, "
                    f"failed {sorted(failed)}"
                )
                await asyncio.sleep(0.1)
    finally:
        server.close()

    assert view.counts.invited == COUNT
    assert view.counts.bounced == len(BOUNCING | FAILING)
    # The sinks produced exactly the bounces and failures asked for, each once.
    assert sorted(produced) == sorted(
        [(rows[i]["email"], "failed") for i in BOUNCING]
        + [(rows[i]["phone"], "failed") for i in FAILING]
    )
    # Every other record's channels are still just ACCEPTED (no receipts were asked for).
    others = await owner_pool.fetchval(
        "SELECT count(*) FROM records WHERE batch_id = $1"
        " AND email_delivery = 'ACCEPTED' AND sms_delivery = 'ACCEPTED'",
        arranged.batch_id,
    )
    assert others == COUNT - len(BOUNCING | FAILING)
    assert polls > 1
