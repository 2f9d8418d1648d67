"""The public pods' readiness follows PostgreSQL through their own pool; liveness does not."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from services.public.app import create_app
from tests.fixtures.proxy import TcpProxy, via_proxy
from tests.server.test_http_readiness import closed_port


@contextlib.asynccontextmanager
async def _client(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(pool, "http://public.test"))
    async with httpx.AsyncClient(transport=transport, base_url="http://public.test") as client:
        yield client


async def test_ready_while_the_database_answers(public_pool: asyncpg.Pool) -> None:
    async with _client(public_pool) as client:
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/healthz")).status_code == 200


async def test_not_ready_but_alive_when_the_pool_cannot_reach_the_database() -> None:
    url = f"postgresql://credbatch_public@127.0.0.1:{closed_port()}/credbatch"
    pool = await create_pool(url, min_size=0)
    try:
        async with _client(pool) as client:
            response = await client.get("/readyz")
            assert (await client.get("/healthz")).status_code == 200
    finally:
        await pool.close()
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"


@pytest.mark.integration
async def test_readiness_follows_the_database_going_away_and_coming_back(
    db_settings: Settings,
) -> None:
    target = urlsplit(db_settings.public_database_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    pool = await create_pool(via_proxy(db_settings.public_database_url, proxy.port), max_size=2)
    try:
        async with _client(pool) as client:
            assert (await client.get("/readyz")).status_code == 200
            await proxy.cut()
            # The kept outcome lasts at most a second.
            await _wait_for(client, 503)
            assert (await client.get("/healthz")).status_code == 200
            await proxy.restore()
            await _wait_for(client, 200)
    finally:
        await pool.close()
        with contextlib.suppress(AssertionError):
            await proxy.cut()


async def _wait_for(client: httpx.AsyncClient, status: int, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (response := await client.get("/readyz")).status_code != status:
        assert loop.time() < deadline, f"/readyz stayed {response.status_code}"
        await asyncio.sleep(0.1)
