"""Running a unit of work again when it lost a conflict: serialization failure or deadlock.

PostgreSQL rolls back the whole transaction of a serialization failure (40001) or of a
deadlock's victim (40P01), so nothing of that attempt remains and the same unit may run again
from its start. That holds only when the unit is whole: every write it makes is in the
transaction that failed (or in earlier ones that are idempotent), and it has no effect outside
the database (no message published, no mail sent) before that transaction commits.

A few attempts with a short, jittered pause suffice: the conflicting transaction usually
commits meanwhile, and the jitter keeps two callers from meeting again in lock-step. Past the
last attempt the conflict is answered ABORTED, which tells the caller to try again later.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg

from credbatch.db.failures import conflict_error, is_conflict
from credbatch.tenancy import TenantScope, tenant_transaction

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often a conflicting unit runs at most, and the pauses between the runs."""

    attempts: int = 3
    base_delay: float = 0.02
    max_delay: float = 0.25

    def delay(self, failed_attempt: int) -> float:
        """The pause after the ``failed_attempt``-th run (1-based): full jitter, growing."""
        cap = min(self.max_delay, self.base_delay * 2 ** (failed_attempt - 1))
        return random.uniform(0, cap)


DEFAULT_POLICY = RetryPolicy()


async def retry_on_conflict(
    unit: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
    time_left: Callable[[], float | None] = lambda: None,
) -> T:
    """Run ``unit`` until it does not end in a conflict, at most ``policy.attempts`` times.

    Args:
        unit: runs the whole unit of work, its transactions included (see the module doc).
        policy: attempts and pauses.
        time_left: seconds left before the caller's deadline (None: no deadline); no run
            starts that could not begin before it.

    Raises:
        Aborted: the last run allowed ended in a conflict (chained to its asyncpg error).
        Anything else ``unit`` raises, at once.
    """
    attempt = 1
    while True:
        try:
            return await unit()
        except Exception as error:
            if not is_conflict(error):
                raise
            pause = policy.delay(attempt)
            remaining = time_left()
            if attempt >= policy.attempts or (remaining is not None and remaining <= pause):
                raise conflict_error(error, attempt) from error
            log.info(
                "transaction conflict (%s), attempt %d of %d; running it again",
                type(error).__name__,
                attempt,
                policy.attempts,
            )
        await asyncio.sleep(pause)
        attempt += 1


async def in_transaction_with_retry(
    pool: asyncpg.Pool,
    scope: TenantScope,
    work: Callable[[asyncpg.Connection], Awaitable[T]],
    *,
    readonly: bool = False,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> T:
    """``work(conn)`` in one tenant_transaction, the whole transaction run again on conflict.

    ``work`` must have no effect outside the transaction (see the module doc): it may run up
    to ``policy.attempts`` times, and only the last run's transaction commits.
    """

    async def unit() -> T:
        async with tenant_transaction(pool, scope, readonly=readonly) as conn:
            return await work(conn)

    return await retry_on_conflict(unit, policy=policy)
