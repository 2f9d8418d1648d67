"""Folding the record-count deltas of every batch into its per-state counts.

Statement triggers on ``records`` append one signed row per (batch, state) and statement to
``batch_count_deltas`` (``records_count_changes``); readers sum those with the folded
``batch_counts``. Folding keeps the number of rows a reader sums small: between two folds a
batch gains at most two rows per statement its writers ran. A fold never changes a count a
reader sees, so any number of processes may fold at once, and a fold that fails loses nothing
(the next one picks the deltas up).
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

log = logging.getLogger(__name__)

FOLD_INTERVAL = 1.0  # seconds between folds of a batch_status process

# Cross-tenant by design: batch_counts_fold is a SECURITY DEFINER function that moves rows
# without reading or exposing them, so it runs without a tenant scope.
_FOLD_ALL = "SELECT batch_counts_fold(NULL, NULL)"


async def fold_counts(pool: asyncpg.Pool) -> int:
    """Fold the deltas of every batch now; the number of delta rows folded."""
    async with pool.acquire() as conn:
        folded: int = await conn.fetchval(_FOLD_ALL)
    return folded


async def fold_periodically(pool: asyncpg.Pool, interval: float = FOLD_INTERVAL) -> None:
    """Fold every ``interval`` seconds until cancelled; a failed fold is logged and retried."""
    while True:
        try:
            await fold_counts(pool)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            # The database is away or busy: readers still sum correctly, only more rows.
            log.warning("folding batch counts failed: %s", type(error).__name__)
        await asyncio.sleep(interval)
