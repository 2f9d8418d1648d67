"""The dispatcher's sampled gauge: the age of the oldest webhook delivery still to make."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from credbatch.metrics import WEBHOOK_OLDEST_UNDELIVERED_AGE

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 5.0
TIMEOUT_SECONDS = 2.0

# Cross-tenant, through the one function the webhooks role may run for it.
_OLDEST = """
SELECT extract(epoch FROM now() - coalesce(webhook_oldest_undelivered(), now()))::float8
"""


async def sample_once(claim_pool: asyncpg.Pool) -> None:
    try:
        age = await claim_pool.fetchval(_OLDEST, timeout=TIMEOUT_SECONDS)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as error:
        log.debug("oldest undelivered webhook not read: %s", type(error).__name__)
        WEBHOOK_OLDEST_UNDELIVERED_AGE.clear()
        return
    WEBHOOK_OLDEST_UNDELIVERED_AGE.set(max(0.0, float(age)))


async def run(claim_pool: asyncpg.Pool, stop: asyncio.Event) -> None:
    """Sample until ``stop`` is set."""
    while not stop.is_set():
        await sample_once(claim_pool)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), INTERVAL_SECONDS)
