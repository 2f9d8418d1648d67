"""A provider's 429 with Retry-After: the jobs wait and come back without burning attempts."""

from __future__ import annotations

import asyncio
import itertools

import asyncpg

from credbatch.config import Settings
from credbatch.messaging import DEAD_QUEUE, connect
from credbatch.messaging.topology import declare_topology
from tests.fixtures.batches import record_states
from tests.fixtures.issuance import (
    Sinks,
    arrange_batch,
    publish_jobs,
    running_worker,
    wait_for_batch,
)

ROWS = 20


async def dead_letters(settings: Settings) -> int:
    connection = await connect(settings)
    try:
        channel = await connection.channel()
        await declare_topology(channel, settings)
        queue = await channel.declare_queue(DEAD_QUEUE, passive=True)
        return queue.declaration_result.message_count or 0
    finally:
        await connection.close()


async def test_sms_429_waits_for_retry_after_and_burns_no_attempt(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    # One attempt only: a throttle that counted as a failure would fail every record at once.
    settings = worker_settings.with_overrides(retry_delays=(0.2, 1.0, 3.0), max_attempts=1)
    arranged = await arrange_batch(owner_pool, ROWS, mediums=("SMS",), certificate=False)
    # The same tenant has more SMS work waiting to be dispatched: the throttle holds it back.
    waiting = await arrange_batch(
        owner_pool, 5, mediums=("SMS",), certificate=False, tenant_id=arranged.tenant_id
    )
    await owner_pool.execute(
        "UPDATE records SET state = 'PENDING' WHERE batch_id = $1", waiting.batch_id
    )
    phones = {r["phone"] for r in arranged.rows}
    # Every send of the batch is refused twice, asking for a second each time.
    sinks.sms.state.throttle(2 * ROWS, retry_after="1")
    sent_before = len(sinks.sms.messages)
    await publish_jobs(settings, arranged)
    async with running_worker(settings):
        # The worker marks the tenant's SMS channel throttled once it settles the refusals.
        held = None
        for _ in range(200):
            held = await owner_pool.fetchval(
                "SELECT sms_throttled_until > now() FROM dispatch_tenants WHERE tenant_id = $1",
                arranged.tenant_id,
            )
            if held:
                break
            await asyncio.sleep(0.05)
        assert held is True
        assert await wait_for_batch(owner_pool, arranged.batch_id, timeout=60) == "COMPLETED"
    assert await record_states(owner_pool, arranged.batch_id) == {"INVITED": ROWS}
    throttled = [(to, at) for to, at in sinks.sms.state.throttled if to in phones]
    assert len(throttled) == 2 * ROWS
    assert {m["to"] for m in sinks.sms.messages[sent_before:]} >= phones
    # No retry came back before the provider's second was up: a number's refusals are at
    # least a second apart (the delay queue of 1 s, not the first back-off step of 0.2 s).
    by_phone: dict[str, list[float]] = {}
    for to, at in throttled:
        by_phone.setdefault(to, []).append(at)
    assert set(by_phone) == phones
    for times in by_phone.values():
        assert all(later - earlier >= 0.95 for earlier, later in itertools.pairwise(times))
    # Attempts not burnt: the records ran at attempt 1 throughout, none failed, nothing dead.
    attempts = await owner_pool.fetch(
        "SELECT attempt, error_code FROM records WHERE batch_id = $1", arranged.batch_id
    )
    assert {(r["attempt"], r["error_code"]) for r in attempts} == {(1, None)}
    assert await dead_letters(settings) == 0
