"""Database failures by kind, each provoked on the real PostgreSQL, and the errors they become."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import grpc
import pytest

from credbatch.config import Settings
from credbatch.db.failures import DbFailure, as_credbatch_error, classify
from credbatch.errors import Aborted, Cancelled, CredbatchError, DeadlineExceeded, Unavailable
from credbatch.tenancy import service_scope, tenant_transaction
from tests.db import provoke


async def _raised(awaitable: Awaitable[object]) -> BaseException:
    try:
        await awaitable
    except Exception as error:
        return error
    raise AssertionError("nothing was raised")


async def _interrupted_sleep(
    owner_pool: asyncpg.Pool,
    db_settings: Settings,
    interrupt: Callable[[asyncpg.Pool, int], Awaitable[None]],
) -> BaseException:
    """What a running statement raises when ``interrupt`` acts on its backend.

    A bare connection, no tenant_transaction: the raw asyncpg error is what is classified.
    """
    conn = await asyncpg.connect(db_settings.app_database_url)
    try:
        statement = asyncio.ensure_future(conn.execute("SELECT pg_sleep(5)"))
        await provoke.running(owner_pool, conn.get_server_pid())
        await interrupt(owner_pool, conn.get_server_pid())
        return await _raised(statement)
    finally:
        conn.terminate()


def _answer(error: BaseException, *, deadline_passed: bool = False) -> CredbatchError:
    mapped = as_credbatch_error(error, deadline_passed=deadline_passed)
    assert mapped is not None, f"{type(error).__name__} was not mapped"
    return mapped


async def test_serialization_failure_is_a_conflict(owner_pool: asyncpg.Pool) -> None:
    row = await provoke.probe_row(owner_pool)
    error = await _raised(provoke.increment(owner_pool, row, interfere=True))
    assert isinstance(error, asyncpg.SerializationError)
    assert classify(error) is DbFailure.CONFLICT
    answer = _answer(error)
    assert isinstance(answer, Aborted)
    assert answer.code is grpc.StatusCode.ABORTED and answer.retryable
    assert answer.reason == "TRANSACTION_CONFLICT"
    assert answer.metadata["sqlstate"] == "40001"


async def test_deadlock_is_a_conflict(app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    records = await provoke.two_records(app_pool, tenant)

    async def victim() -> None:
        async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
            await provoke.deadlock(conn, owner_pool, tenant, records)

    error = await _raised(victim())
    assert isinstance(error, asyncpg.DeadlockDetectedError)
    assert classify(error) is DbFailure.CONFLICT
    assert _answer(error).metadata["sqlstate"] == "40P01"


async def test_statement_timeout_is_cancelled_or_past_the_deadline(
    app_pool: asyncpg.Pool,
) -> None:
    async def slow() -> None:
        async with tenant_transaction(app_pool, service_scope(uuid.uuid4()), readonly=True) as c:
            await c.execute("SET LOCAL statement_timeout = 50")
            await c.execute("SELECT pg_sleep(5)")

    error = await _raised(slow())
    assert isinstance(error, asyncpg.QueryCanceledError)
    assert classify(error) is DbFailure.CANCELED
    cancelled = _answer(error)
    assert isinstance(cancelled, Cancelled)
    assert cancelled.code is grpc.StatusCode.CANCELLED
    assert cancelled.metadata["sqlstate"] == "57014"
    late = _answer(error, deadline_passed=True)
    assert isinstance(late, DeadlineExceeded)
    assert late.code is grpc.StatusCode.DEADLINE_EXCEEDED


async def test_terminated_backend_mid_statement_is_unavailable(
    owner_pool: asyncpg.Pool, db_settings: Settings
) -> None:
    error = await _interrupted_sleep(owner_pool, db_settings, provoke.terminate)
    assert isinstance(error, asyncpg.PostgresConnectionError | asyncpg.AdminShutdownError)
    assert classify(error) is DbFailure.UNAVAILABLE
    answer = _answer(error)
    assert isinstance(answer, Unavailable) and answer.retryable
    assert answer.reason == "DATABASE_UNAVAILABLE"


async def test_cancelled_statement_is_cancelled(
    owner_pool: asyncpg.Pool, db_settings: Settings
) -> None:
    error = await _interrupted_sleep(owner_pool, db_settings, provoke.cancel)
    assert isinstance(error, asyncpg.QueryCanceledError)
    assert isinstance(_answer(error), Cancelled)


async def test_refused_connection_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connecting is refused
        error = await _raised(asyncpg.connect(host="127.0.0.1", port=port, user="postgres"))
    assert isinstance(error, ConnectionRefusedError)
    assert isinstance(_answer(error), Unavailable)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.TooManyConnectionsError("53300"),
        asyncpg.OutOfMemoryError("53200"),
        asyncpg.CrashShutdownError("57P02"),
        asyncpg.CannotConnectNowError("57P03"),
        asyncpg.ConnectionFailureError("08006"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_resource_and_shutdown_classes_are_unavailable(error: asyncpg.PostgresError) -> None:
    # Server states that cannot be provoked here without harming the shared server.
    assert classify(error) is DbFailure.UNAVAILABLE


async def test_other_database_errors_are_not_mapped(owner_pool: asyncpg.Pool) -> None:
    row = await provoke.probe_row(owner_pool)
    duplicate = await _raised(
        owner_pool.execute(f"INSERT INTO {provoke.PROBE_TABLE} (id, n) VALUES ($1, 1)", row)
    )
    assert isinstance(duplicate, asyncpg.UniqueViolationError)
    assert classify(duplicate) is None
    assert as_credbatch_error(duplicate, deadline_passed=False) is None
    assert classify(asyncpg.InterfaceError("misuse")) is None
    assert classify(TimeoutError()) is None
