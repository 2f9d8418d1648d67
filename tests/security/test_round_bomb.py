"""Issue 21's bomb: `{{ 5 | round(0 - (level|int)) }}` with a CSV `level` of 10,000,000.

It passes creation (the trial render gives `level` its own name, which `int` makes 0) and cost
a worker 5 s of CPU per row on its event loop, stalling every tenant's jobs there. Now:

- its price refuses the precision: each record fails at once (TEMPLATE_UNSAFE), on its first
  attempt, while another tenant's batch, published in between, is issued as usual;
- where a price is missing (a render process built without it, as a stand-in for a sandbox
  hole nobody has found yet), the render process is killed at its deadline, the record fails
  (TEMPLATE_TIMEOUT), the template is set aside, and the other tenant's batch is issued all the
  same.

The other batch's jobs sit between the bomb's on the queue, so a worker stalled by the bomb
would hold them for minutes; the bounds below are ten times what the work takes here.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import Any

import asyncpg
import pytest

from credbatch.config import Settings
from credbatch.gen.templates.v1 import templates_pb2, templates_service_pb2
from credbatch.messaging import (
    EXCHANGE,
    WORK_ROUTING_KEY,
    ConfirmingPublisher,
    OutgoingMessage,
    connect,
    declare_topology,
)
from credbatch.templating.runner import pool as render_pool_module
from tests.fixtures.batches import Templates, insert_batch, insert_schema, record_states
from tests.fixtures.issuance import Arranged, Sinks, arrange_batch, job_body, running_worker
from tests.fixtures.templates import make_tenant

ROUND_BOMB = "<p>{{ 5 | round(0 - (level|int)) }} {{ claim_url }}</p>"
LEVEL = 10_000_000
BOMBS = 300
OTHERS = 50
FINISHED_WITHIN = 120.0
HOLEY = (sys.executable, "-m", "tests.templating.runner.holey_child")


async def _create_bomb_template(templates_stub: Any, settings: Settings) -> tuple[uuid.UUID, str]:
    """The bomb, created through the TemplateService: its trial render passes."""
    tenant = make_tenant(settings)
    created = await templates_stub.CreateEmailTemplate(
        templates_service_pb2.CreateEmailTemplateRequest(
            email_template=templates_pb2.EmailTemplate(
                display_name="round bomb",
                subject="Your credential",
                html_body=ROUND_BOMB,
                text_body="{{ claim_url }}",
            )
        ),
        metadata=tenant.admin,
    )
    return tenant.id, created.name.rpartition("/")[2]


async def _arrange_bombs(owner_pool: asyncpg.Pool, tenant_id: uuid.UUID, template: str) -> Arranged:
    schema_id = await insert_schema(
        owner_pool,
        tenant_id,
        attributes=[
            {"name": "full_name", "type": "STRING", "required": True},
            {"name": "level", "type": "INTEGER", "required": True},
        ],
    )
    domain = f"b{uuid.uuid4().hex[:12]}.example.test"
    rows = [{"email": f"holder{i}@{domain}", "full_name": f"Holder {i}"} for i in range(BOMBS)]
    batch = await insert_batch(
        owner_pool,
        tenant_id,
        schema_id,
        states=["QUEUED"] * BOMBS,
        mediums=["EMAIL"],
        emails=[row["email"] for row in rows],
        phones=[None] * BOMBS,
        attributes=[{"full_name": row["full_name"], "level": LEVEL} for row in rows],
        templates=Templates(email=uuid.UUID(template)),
    )
    return Arranged(tenant_id, batch.batch_id, batch.record_ids, rows)


async def _publish_interleaved(settings: Settings, *batches: Arranged) -> None:
    """Every batch's jobs, one of each in turn, as the relay's fair dispatch sends them."""
    jobs = [[(b.tenant_id, b.batch_id, record_id) for record_id in b.record_ids] for b in batches]
    order = []
    for position in range(max(len(j) for j in jobs)):
        order += [j[position] for j in jobs if position < len(j)]
    connection = await connect(settings)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, settings)
        await ConfirmingPublisher(channel).publish_many(
            [
                OutgoingMessage(
                    routing_key=WORK_ROUTING_KEY,
                    body=job_body(*job),
                    message_id=str(job[2]),
                    exchange=EXCHANGE,
                )
                for job in order
            ],
            timeout=30,
        )
    finally:
        await connection.close()


async def _open(owner_pool: asyncpg.Pool, batch_id: uuid.UUID) -> int:
    count = await owner_pool.fetchval(
        "SELECT count(*) FROM records WHERE batch_id = $1"
        " AND state NOT IN ('INVITED', 'FAILED', 'CANCELLED')",
        batch_id,
    )
    return int(count)


async def _run_both(
    settings: Settings, owner_pool: asyncpg.Pool, bombs: Arranged, others: Arranged
) -> tuple[float, int]:
    """Run a worker until both batches finish; when the other one finished, and how many of
    the bomb's records were still open then."""
    await _publish_interleaved(settings, bombs, others)
    started = time.monotonic()
    other_done_at, bombs_open_then = 0.0, -1
    async with running_worker(settings):
        while time.monotonic() - started < FINISHED_WITHIN:
            states = {
                batch_id: await owner_pool.fetchval(
                    "SELECT state FROM batches WHERE id = $1", batch_id
                )
                for batch_id in (bombs.batch_id, others.batch_id)
            }
            if not other_done_at and states[others.batch_id] == "COMPLETED":
                other_done_at = time.monotonic() - started
                bombs_open_then = await _open(owner_pool, bombs.batch_id)
            if other_done_at and states[bombs.batch_id] == "COMPLETED_WITH_ERRORS":
                break
            await asyncio.sleep(0.05)
    assert other_done_at, "the other tenant's batch did not complete"
    return other_done_at, bombs_open_then


async def _failures(owner_pool: asyncpg.Pool, batch_id: uuid.UUID) -> list[asyncpg.Record]:
    return list(
        await owner_pool.fetch(
            "SELECT error_code, error_message, attempt FROM records WHERE batch_id = $1",
            batch_id,
        )
    )


async def test_the_round_bomb_fails_each_record_at_once_and_the_other_tenant_is_served(
    templates_stub: Any,
    settings: Settings,
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    sinks: Sinks,
) -> None:
    tenant_id, template = await _create_bomb_template(templates_stub, settings)
    bombs = await _arrange_bombs(owner_pool, tenant_id, template)
    others = await arrange_batch(owner_pool, OTHERS, mediums=("EMAIL",), certificate=False)

    other_done_at, bombs_open_then = await _run_both(worker_settings, owner_pool, bombs, others)

    assert other_done_at < FINISHED_WITHIN
    assert await record_states(owner_pool, others.batch_id) == {"INVITED": OTHERS}
    assert await record_states(owner_pool, bombs.batch_id) == {"FAILED": BOMBS}
    failures = await _failures(owner_pool, bombs.batch_id)
    assert {(r["error_code"], r["attempt"]) for r in failures} == {("TEMPLATE_ERROR", 1)}
    assert {r["error_message"] for r in failures} == {
        "TEMPLATE_UNSAFE: `round`: the precision is between -78 and 78"
    }
    mailed = {recipients[0] for recipients, _ in sinks.smtp.messages}
    assert not mailed & {row["email"] for row in bombs.rows}
    # The other batch was done while the bomb's records were still being handled.
    assert bombs_open_then > 0


async def test_where_the_price_is_missing_the_render_is_stopped_and_the_other_tenant_served(
    templates_stub: Any,
    settings: Settings,
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    sinks: Sinks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The worker's render processes lose round's price: only the kill can stop the bomb.
    monkeypatch.setattr(render_pool_module, "CHILD_COMMAND", HOLEY)
    tenant_id, template = await _create_bomb_template(templates_stub, settings)
    bombs = await _arrange_bombs(owner_pool, tenant_id, template)
    others = await arrange_batch(owner_pool, OTHERS, mediums=("EMAIL",), certificate=False)

    other_done_at, bombs_open_then = await _run_both(
        worker_settings.with_overrides(render_grace_seconds=0.5), owner_pool, bombs, others
    )

    assert other_done_at < FINISHED_WITHIN
    assert await record_states(owner_pool, others.batch_id) == {"INVITED": OTHERS}
    assert await record_states(owner_pool, bombs.batch_id) == {"FAILED": BOMBS}
    failures = await _failures(owner_pool, bombs.batch_id)
    assert {(r["error_code"], r["attempt"]) for r in failures} == {("TEMPLATE_ERROR", 1)}
    # One record's render was stopped; the others were not tried once the template was set
    # aside (each would have cost a process and a deadline).
    messages = [r["error_message"] for r in failures]
    assert all(m.startswith("TEMPLATE_TIMEOUT: ") for m in messages)
    stopped = [m for m in messages if "stopped" in m]
    assert 1 <= len(stopped) <= 5
    assert bombs_open_then > 0
