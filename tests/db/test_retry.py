"""Running a unit of work again after a real serialization failure or deadlock."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from credbatch.db.retry import RetryPolicy, in_transaction_with_retry, retry_on_conflict
from credbatch.errors import Aborted
from credbatch.tenancy import service_scope
from tests.db import provoke

FAST = RetryPolicy(attempts=3, base_delay=0.001, max_delay=0.005)


class Counted:
    """A unit of work that counts its runs; ``work`` gets the run's number, from 1."""

    def __init__(self, work: Callable[[int], Awaitable[object]]) -> None:
        self.runs = 0
        self._work = work

    async def __call__(self) -> None:
        self.runs += 1
        await self._work(self.runs)


async def test_a_conflict_is_run_again_and_commits_once(owner_pool: asyncpg.Pool) -> None:
    row = await provoke.probe_row(owner_pool)
    unit = Counted(lambda run: provoke.increment(owner_pool, row, interfere=run == 1))

    await retry_on_conflict(unit, policy=FAST)
    assert unit.runs == 2
    # The interfering update (100) and the second run's increment (1); the first run's
    # increment was rolled back with its transaction.
    assert await provoke.probe_value(owner_pool, row) == 101


async def test_a_persistent_conflict_ends_aborted(owner_pool: asyncpg.Pool) -> None:
    row = await provoke.probe_row(owner_pool)
    unit = Counted(lambda _: provoke.increment(owner_pool, row, interfere=True))

    with pytest.raises(Aborted) as caught:
        await retry_on_conflict(unit, policy=FAST)
    assert unit.runs == 3
    assert caught.value.metadata == {"sqlstate": "40001", "attempts": "3"}
    assert isinstance(caught.value.__cause__, asyncpg.SerializationError)
    assert await provoke.probe_value(owner_pool, row) == 300, "no run's own increment remains"


async def test_no_run_starts_past_the_deadline(owner_pool: asyncpg.Pool) -> None:
    row = await provoke.probe_row(owner_pool)
    unit = Counted(lambda _: provoke.increment(owner_pool, row, interfere=True))

    with pytest.raises(Aborted):
        await retry_on_conflict(unit, policy=FAST, time_left=lambda: 0.0)
    assert unit.runs == 1


async def test_other_errors_are_not_retried(owner_pool: asyncpg.Pool) -> None:
    row = await provoke.probe_row(owner_pool)
    insert = f"INSERT INTO {provoke.PROBE_TABLE} (id, n) VALUES ($1, 1)"
    unit = Counted(lambda _: owner_pool.execute(insert, row))

    with pytest.raises(asyncpg.UniqueViolationError):
        await retry_on_conflict(unit, policy=FAST)
    assert unit.runs == 1


async def test_tenant_transaction_survives_a_deadlock(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    records = await provoke.two_records(app_pool, tenant)
    runs = 0

    async def work(conn: asyncpg.Connection) -> str:
        nonlocal runs
        runs += 1
        if runs == 1:
            await provoke.deadlock(conn, owner_pool, tenant, records)
        await conn.execute(
            "UPDATE records SET state = 'CANCELLED' WHERE tenant_id = $1 AND id = ANY($2)",
            tenant,
            records,
        )
        return "done"

    assert await in_transaction_with_retry(app_pool, service_scope(tenant), work, policy=FAST)
    assert runs == 2
    states = await owner_pool.fetch(
        "SELECT state FROM records WHERE tenant_id = $1 AND id = ANY($2)", tenant, records
    )
    assert [r["state"] for r in states] == ["CANCELLED", "CANCELLED"]


def test_pauses_are_jittered_and_bounded() -> None:
    policy = RetryPolicy(attempts=5, base_delay=0.02, max_delay=0.05)
    pauses = [policy.delay(n) for n in (1, 2, 3, 4) for _ in range(50)]
    assert all(0 <= p <= 0.05 for p in pauses)
    assert len(set(pauses)) > 1
    assert all(policy.delay(1) <= 0.02 for _ in range(50))
