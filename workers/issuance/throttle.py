"""Holding a tenant's dispatch back while a provider throttles its sends.

A throttled job waits in a delay queue (``job.throttle_queue``); the tenant's other PENDING
records would only meet the same refusal, so the relay is told to dispatch none of the
tenant's batches using that channel for as long (``dispatch_throttle``, in
``credbatch/db/functions``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import asyncpg

from credbatch.config import Settings
from credbatch.schema.model import Medium
from credbatch.tenancy import service_scope, tenant_transaction
from workers.issuance.outcomes import Throttle
from workers.issuance.triage import WorkRecord

_HOLD = "SELECT dispatch_throttle($1, $2)"


def hold_seconds(throttle: Throttle, attempt: int, settings: Settings) -> float:
    """How long the channel is held: the provider's Retry-After, else the attempt's back-off."""
    if throttle.retry_after is not None:
        return throttle.retry_after
    delays = settings.retry_delays
    return delays[min(max(attempt, 1), len(delays)) - 1]


async def hold_dispatch(
    pool: asyncpg.Pool,
    tenant_id: uuid.UUID,
    throttled: Iterable[tuple[Throttle, int]],
    settings: Settings,
) -> None:
    """Hold the tenant's dispatch back per throttled channel, for the longest delay asked.

    Args:
        throttled: each throttle met, with the attempt of the job it stopped.
    """
    longest: dict[Medium, float] = {}
    for throttle, attempt in throttled:
        seconds = hold_seconds(throttle, attempt, settings)
        longest[throttle.medium] = max(seconds, longest.get(throttle.medium, 0.0))
    held = {medium: seconds for medium, seconds in longest.items() if seconds > 0}
    if not held:
        return
    # Its own short transaction: a relay serving the tenant holds its key until its window
    # commits, and the outcomes must not wait for that.
    async with tenant_transaction(pool, service_scope(tenant_id)) as conn:
        for medium, seconds in sorted(held.items(), key=lambda item: item[0].value):
            await conn.execute(_HOLD, medium.value, seconds)


def throttles_met(records: Iterable[WorkRecord]) -> list[tuple[Throttle, int]]:
    """The throttles among the records' failures, each with its record's attempt."""
    return [
        (r.failure.throttle, r.attempt)
        for r in records
        if r.failure is not None and r.failure.throttle is not None
    ]
