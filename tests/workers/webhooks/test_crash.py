"""A dispatcher killed mid-delivery loses nothing: every event still arrives, at least once."""

from __future__ import annotations

import asyncio
import signal
import uuid
from typing import Any

import asyncpg

from credbatch.config import Settings
from tests.fixtures.webhooks import spawn_dispatcher, wait_until
from tests.workers.webhooks.events import create_endpoint, finish_batch
from tests.workers.webhooks.receiver import Answer, Receiver

EVENTS = 5


async def test_sigkill_mid_delivery_loses_no_event(
    settings: Settings,
    hooks_stub: Any,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    receiver: Receiver,
    tenant: uuid.UUID,
) -> None:
    # The first requests are held open: the dispatcher is killed while they are in flight.
    receiver.script("/crash", *[Answer(200, delay=4.0)] * 4)
    await create_endpoint(hooks_stub, settings, tenant, receiver.url("/crash"))
    for _ in range(EVENTS):
        await finish_batch(owner_pool, app_pool, tenant)
    events = {
        r["id"]
        for r in await owner_pool.fetch(
            "SELECT id FROM webhook_events WHERE tenant_id = $1", tenant
        )
    }
    assert len(events) == EVENTS

    first = spawn_dispatcher(settings)
    try:
        await receiver.wait_for("/crash", 1, timeout=30)
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait, 10)
    finally:
        if first.poll() is None:
            first.kill()
    in_flight = await owner_pool.fetchval(
        "SELECT count(*) FROM webhook_deliveries WHERE tenant_id = $1 AND state = 'PENDING'",
        tenant,
    )
    assert in_flight >= 1, "the kill came after everything was recorded: nothing was tested"

    second = spawn_dispatcher(settings)
    try:

        async def all_delivered() -> bool:
            pending = await owner_pool.fetchval(
                "SELECT count(*) FROM webhook_deliveries "
                "WHERE tenant_id = $1 AND state <> 'SUCCEEDED'",
                tenant,
            )
            return bool(pending == 0)

        await wait_until(all_delivered, timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 30) == 0
    received = {r.headers["webhook-id"] for r in receiver.received["/crash"]}
    assert received == events
