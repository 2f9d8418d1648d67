"""A tenant transaction whose connection is lost, or never opened, raises Unavailable.

asyncpg reports a connection lost during a transaction as InterfaceError (the rollback finds
it closed), the type it also uses for API misuse; tenant_transaction tells them apart.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.errors import Unavailable
from credbatch.tenancy import service_scope, tenant_transaction
from tests.db import provoke


@pytest_asyncio.fixture
async def own_pool(db_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    # Its own pool: the tests kill its connections.
    pool = await create_pool(db_settings.app_database_url, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


async def test_backend_terminated_between_statements(
    own_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    with pytest.raises(Unavailable) as caught:
        async with tenant_transaction(own_pool, service_scope(uuid.uuid4())) as conn:
            await provoke.terminate(owner_pool, conn.get_server_pid())
            await asyncio.sleep(0.1)  # the connection sees its end while idle in transaction
            await conn.execute("SELECT 1")
    assert caught.value.reason == "DATABASE_UNAVAILABLE"
    assert isinstance(caught.value.__cause__, asyncpg.InterfaceError)
    # The pool replaces the lost connection.
    async with tenant_transaction(own_pool, service_scope(uuid.uuid4()), readonly=True) as conn:
        assert await conn.fetchval("SELECT 1") == 1


async def test_backend_terminated_mid_statement(
    own_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    with pytest.raises(Unavailable) as caught:
        async with tenant_transaction(own_pool, service_scope(uuid.uuid4())) as conn:
            statement = asyncio.ensure_future(conn.execute("SELECT pg_sleep(5)"))
            await provoke.running(owner_pool, conn.get_server_pid())
            await provoke.terminate(owner_pool, conn.get_server_pid())
            await statement
    # The statement's own error, not the rollback's, names what happened.
    assert caught.value.metadata.get("sqlstate") in {"08003", "57P01"}


async def test_misuse_is_not_unavailable(own_pool: asyncpg.Pool) -> None:
    with pytest.raises(asyncpg.InterfaceError):
        async with tenant_transaction(own_pool, service_scope(uuid.uuid4())) as conn:
            first = asyncio.ensure_future(conn.execute("SELECT pg_sleep(0.2)"))
            try:
                await conn.execute("SELECT 1")  # another operation is in progress
            finally:
                await first


async def test_refused_connection_is_unavailable(db_settings: Settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connecting is refused
        pool = await create_pool(f"postgresql://postgres@127.0.0.1:{port}/x", min_size=0)
        try:
            with pytest.raises(Unavailable) as caught:
                async with tenant_transaction(pool, service_scope(uuid.uuid4())):
                    pass
        finally:
            await pool.close()
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)
