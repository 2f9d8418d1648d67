"""Held writes: run again while the database is unavailable, never on any other error."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest

from credbatch.db.failures import unavailable_error
from workers.issuance.durable import Backoff, database_unavailable, hold_until_written

QUICK = Backoff(first=0.001, longest=0.004)


class Flaky:
    """A unit that fails with the given errors, one per run, then returns ``done``."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.runs = 0

    async def __call__(self) -> str:
        self.runs += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "refused"),  # the server is not listening
        unavailable_error(),  # tenancy: connection refused on acquire or lost mid-transaction
        asyncpg.ConnectionDoesNotExistError("lost"),  # lost mid-statement (class 08)
        asyncpg.AdminShutdownError("shutdown"),  # 57P01: fast shutdown, terminate_backend
        asyncpg.CannotConnectNowError("starting"),  # 57P03: the server is starting up
        asyncpg.TooManyConnectionsError("full"),  # 53300
        asyncpg.DeadlockDetectedError("deadlock"),  # rolled back: safe to run again
        TimeoutError(),  # a connection attempt that timed out
    ],
    ids=type,
)
def test_unavailability_and_conflicts_are_waited_out(error: BaseException) -> None:
    assert database_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.UniqueViolationError("dup"),
        asyncpg.UndefinedColumnError("bug"),
        asyncpg.QueryCanceledError("statement timeout"),
        asyncpg.InterfaceError("misuse of the API"),
        ValueError("bug"),
    ],
    ids=type,
)
def test_other_errors_are_not(error: BaseException) -> None:
    assert not database_unavailable(error)


async def test_runs_until_the_database_takes_it(caplog: pytest.LogCaptureFixture) -> None:
    unit = Flaky(
        ConnectionRefusedError(111, "refused"),
        asyncpg.AdminShutdownError("shutdown"),
        asyncpg.CannotConnectNowError("starting"),
    )
    with caplog.at_level(logging.INFO, logger="workers.issuance.durable"):
        assert await hold_until_written(unit, "outcomes of 3 records", backoff=QUICK) == "done"
    assert unit.runs == 4
    # One line when the hold starts, one when it ends: not one per run.
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]
    assert "outcomes of 3 records" in caplog.records[0].getMessage()
    assert "3 failed runs" in caplog.records[1].getMessage()


async def test_a_write_taken_at_once_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    unit = Flaky()
    with caplog.at_level(logging.INFO, logger="workers.issuance.durable"):
        assert await hold_until_written(unit, "outcomes", backoff=QUICK) == "done"
    assert unit.runs == 1
    assert caplog.records == []


async def test_another_error_propagates_at_once() -> None:
    unit = Flaky(ConnectionRefusedError(111, "refused"), asyncpg.UniqueViolationError("dup"))
    with pytest.raises(asyncpg.UniqueViolationError):
        await hold_until_written(unit, "outcomes", backoff=QUICK)
    assert unit.runs == 2


async def test_cancelling_ends_the_hold() -> None:
    # What the consumer does when a stop's grace period runs out during an outage.
    unit = Flaky(*(ConnectionRefusedError(111, "refused") for _ in range(10_000)))
    held = asyncio.create_task(hold_until_written(unit, "outcomes", backoff=QUICK))
    while unit.runs < 3:
        await asyncio.sleep(0.001)
    held.cancel()
    with pytest.raises(asyncio.CancelledError):
        await held
    runs = unit.runs
    await asyncio.sleep(0.02)
    assert unit.runs == runs


def test_pauses_double_up_to_the_longest() -> None:
    backoff = Backoff(first=0.1, longest=1.0)
    for failed_runs, cap in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (30, 1.0)]:
        for _ in range(50):
            assert cap / 2 <= backoff.pause(failed_runs) <= cap
