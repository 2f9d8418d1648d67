"""Ended batches for the janitor's tests: arranged as the owner, with their end moved back."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from tests.fixtures.batches import ArrangedBatch, insert_batch


async def ended_batch(
    owner_pool: asyncpg.Pool,
    days_ago: float,
    states: Sequence[str] = ("INVITED", "FAILED", "CLAIMED"),
    *,
    tenant_id: uuid.UUID | None = None,
    batch_state: str = "COMPLETED_WITH_ERRORS",
) -> ArrangedBatch:
    """A batch in ``batch_state`` that ended ``days_ago`` days ago, one record per state (the
    FAILED ones with an error message quoting a value)."""
    errors = [
        ("INVALID_EMAIL", "bad address x@y") if s == "FAILED" else (None, None) for s in states
    ]
    batch = await insert_batch(
        owner_pool,
        tenant_id,
        states=states,
        errors=errors,
        attributes=[{"name": f"Holder {i}"} for i in range(len(states))],
        batch_state=batch_state,
    )
    column = "cancelled_at" if batch_state == "CANCELLED" else "completed_at"
    await owner_pool.execute(
        f"UPDATE batches SET {column} = now() - make_interval(secs => $2) WHERE id = $1",
        batch.batch_id,
        days_ago * 86400,
    )
    return batch


async def purge_all(janitor_pool: asyncpg.Pool, days: int = 30, step: int = 2) -> int:
    """Purge steps as the janitor's role until nothing is due; the records erased."""
    total = 0
    while row := await janitor_pool.fetchrow("SELECT * FROM janitor_purge($1, $2)", days, step):
        total += row["purged"]
    return total
