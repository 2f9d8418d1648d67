"""Folding the record-count deltas of every batch into its per-state counts.

Statement triggers on ``records`` append one signed row per (batch, state) and statement to
``batch_count_deltas`` (``records_count_changes``); readers sum those with the folded
``batch_counts``. Folding keeps the number of rows a reader sums small: between two folds a
batch gains at most two rows per statement its writers ran. A fold never changes a count a
reader sees, so any number of processes may fold at once, and a fold that fails loses nothing
(the next one picks the deltas up).

The fold moves every tenant's rows, so it runs in the relay process as the relay's role, the
only one allowed ``batch_counts_fold``; readers (the batch status service) need no fold to
count right, only to sum fewer rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

log = logging.getLogger(__name__)

FOLD_INTERVAL = 1.0  # seconds between folds of a relay process

# Cross-tenant by design: batch_counts_fold is a SECURITY DEFINER function that moves rows
# without reading or exposing them, so it runs without a tenant scope.
_FOLD_ALL = "SELECT batch_counts_fold(NULL, NULL)"


async def fold_counts(pool: asyncpg.Pool) -> int:
    """Fold the deltas of every batch now, on ``pool`` of the relay's role; the number of
    delta rows folded."""
    async with pool.acquire() as conn:
        folded: int = await conn.fetchval(_FOLD_ALL)
    return folded


async def fold_until(
    pool: asyncpg.Pool, stop: asyncio.Event, interval: float = FOLD_INTERVAL
) -> None:
    """Fold every ``interval`` seconds until ``stop`` is set; a failed fold is logged and
    tried again."""
    while not stop.is_set():
        try:
            await fold_counts(pool)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            # The database is away or busy: readers still sum correctly, only more rows.
            log.warning("folding batch counts failed: %s", type(error).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
