"""A dispatcher process serves its delivery metrics on CREDBATCH_METRICS_PORT: attempts by
outcome, request durations, and the age of the oldest delivery still to make."""

from __future__ import annotations

import asyncio
import signal
import uuid
from typing import Any

import asyncpg

from credbatch.config import Settings
from tests.fixtures.observed import assert_serves_what_is_used
from tests.fixtures.processes import free_port
from tests.fixtures.scrape import find, scrape, wait_for_sample
from tests.fixtures.webhooks import spawn_dispatcher
from tests.workers.webhooks.events import create_endpoint, finish_batch
from tests.workers.webhooks.receiver import Answer, Receiver

DELIVERIES = "credbatch_webhook_deliveries_total"


async def test_dispatcher_counts_attempts_by_outcome_and_the_backlog_age(
    settings: Settings,
    hooks_stub: Any,
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    receiver: Receiver,
    tenant: uuid.UUID,
) -> None:
    receiver.script("/metered", Answer(500), Answer(200))
    await create_endpoint(hooks_stub, settings, tenant, receiver.url("/metered"))
    await finish_batch(owner_pool, app_pool, tenant)
    port = free_port()
    dispatcher = spawn_dispatcher(
        settings, {"CREDBATCH_METRICS_PORT": str(port), "OTEL_SDK_DISABLED": "false"}
    )
    try:
        samples = await wait_for_sample(
            port, DELIVERIES, {"credbatch_webhook_outcome": "succeeded"}, minimum=1
        )
        (retried,) = find(samples, DELIVERIES, credbatch_webhook_outcome="retry")
        assert retried.value == 1
        (requests,) = find(samples, "credbatch_webhook_delivery_duration_seconds_count")
        assert requests.value == 2
        # Sampled every few seconds: with nothing left to deliver the age goes to 0.
        for _ in range(100):
            ages = find(await scrape(port), "credbatch_webhook_oldest_undelivered_age_seconds")
            if ages and ages[0].value == 0:
                break
            await asyncio.sleep(0.1)
        assert ages and ages[0].value == 0
        assert_serves_what_is_used(await scrape(port), "webhooks-dispatcher")
        # No label names a tenant, an endpoint or an event.
        assert str(tenant) not in repr(samples)
    finally:
        dispatcher.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(dispatcher.wait, 30) == 0
