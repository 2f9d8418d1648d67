"""A template bomb that only a real row reaches fails its records at once, in the worker,
and the worker meanwhile serves another tenant's batch."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from credbatch.config import Settings
from tests.fixtures.batches import record_states
from tests.fixtures.issuance import Sinks, arrange_batch, publish_jobs, running_worker

# The trial render at creation uses short placeholder values; every holder name of the
# arranged rows ("Holder Number 7") is longer than 10 characters and reaches the power tower.
LATE_BOMB = (
    "{% if full_name | length > 10 %}"
    "{{ ((((full_name | length + 9) ** 64) ** 64) ** 64) % 7 }}"
    "{% endif %}<p>{{ claim_url }}</p>"
)


async def _finished(owner_pool: asyncpg.Pool, batch_id: object, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = await owner_pool.fetchval("SELECT state FROM batches WHERE id = $1", batch_id)
        if state in ("COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED", "CANCELLED"):
            return str(state)
        await asyncio.sleep(0.05)
    raise AssertionError(f"batch {batch_id} not finished after {timeout}s")


async def test_a_late_integer_bomb_fails_its_records_and_spares_the_other_tenant(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    bombed = await arrange_batch(owner_pool, 2, mediums=("EMAIL",), certificate=False)
    other = await arrange_batch(owner_pool, 20, mediums=("EMAIL",), certificate=False)
    await owner_pool.execute(
        "UPDATE email_templates SET html_body = $2 WHERE tenant_id = $1",
        bombed.tenant_id,
        LATE_BOMB,
    )
    await publish_jobs(worker_settings, bombed)
    await publish_jobs(worker_settings, other)
    async with running_worker(worker_settings):
        bomb_state = await _finished(owner_pool, bombed.batch_id, timeout=30)
        other_state = await _finished(owner_pool, other.batch_id, timeout=30)
    assert bomb_state == "COMPLETED_WITH_ERRORS"
    assert other_state == "COMPLETED"
    assert await record_states(owner_pool, bombed.batch_id) == {"FAILED": 2}
    assert await record_states(owner_pool, other.batch_id) == {"INVITED": 20}
    codes = await owner_pool.fetch(
        "SELECT error_code, error_message, attempt FROM records WHERE batch_id = $1",
        bombed.batch_id,
    )
    # Failed by the render's number limit on the jobs' first attempt (a retry would count 2):
    # an unbounded power tower would have rendered, after seconds of CPU per row, and the
    # records would be INVITED.
    assert [r["attempt"] for r in codes] == [1, 1]
    assert {r["error_code"] for r in codes} == {"TEMPLATE_ERROR"}
    assert all(r["error_message"].startswith("TEMPLATE_NUMBER_TOO_LARGE") for r in codes)
    mailed = {recipients[0] for recipients, _ in sinks.smtp.messages}
    assert not mailed & {r["email"] for r in bombed.rows}
