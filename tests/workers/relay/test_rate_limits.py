"""Per-tenant sending rates at the relay's dispatch: a limited tenant beside an unlimited one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio

from tests.fixtures.dispatch import (
    FairDb,
    add_pending_batch,
    claim_and_queue,
    drain,
)

RUN_SECONDS = 10.5


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def clean_slate(fair_db: FairDb) -> AsyncIterator[None]:
    await drain(fair_db.relay)
    yield


def most_in_window(times: list[float], window: float) -> int:
    """The most events within any ``window`` seconds."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_limited_tenant_keeps_its_rate_while_unlimited_one_runs(fair_db: FairDb) -> None:
    limited, unlimited = uuid.uuid4(), uuid.uuid4()
    slow = await add_pending_batch(fair_db.owner, limited, 2000)
    fast = await add_pending_batch(fair_db.owner, unlimited, 20000, mediums=("EMAIL", "SMS"))
    await fair_db.owner.execute(
        "INSERT INTO tenant_limits (tenant_id, emails_per_second) VALUES ($1, 50)", limited
    )
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < RUN_SECONDS:
        if not await claim_and_queue(fair_db.relay, 500):
            await asyncio.sleep(0.02)
    elapsed = loop.time() - start
    # When each record was dispatched, as the relay's transaction stamped it.
    sent = {
        batch: [
            r["t"]
            for r in await fair_db.owner.fetch(
                "SELECT extract(epoch FROM queued_at)::float8 AS t FROM records"
                " WHERE batch_id = $1 AND queued_at IS NOT NULL ORDER BY queued_at",
                batch,
            )
        ]
        for batch in (slow, fast)
    }

    # 50/s: at most 55/s over any 10 s (the bucket holds half a second: 25), and no more
    # than 50 + 25 in any single second.
    assert most_in_window(sent[slow], 10.0) <= 550
    assert most_in_window(sent[slow], 1.0) <= 75
    # ...yet it does get its rate, not less.
    assert len(sent[slow]) >= 0.8 * 50 * elapsed
    # The unlimited tenant is not slowed down to the other's pace: held to it, it would get
    # about as many. (How many it gets is the machine's speed, a benchmark's business.)
    assert len(sent[fast]) == 20000 or len(sent[fast]) >= 4 * len(sent[slow])
    # The held-back records still count as dispatchable, at the tenant's rate.
    backlog = await fair_db.relay.fetchval("SELECT dispatchable_backlog(NULL, NULL)")
    remaining_fast = 20000 - len(sent[fast])
    assert backlog == remaining_fast + 50
