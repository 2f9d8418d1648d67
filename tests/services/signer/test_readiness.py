"""The signer's readiness follows PostgreSQL through its own pool; probes need no token."""

from __future__ import annotations

import asyncpg
import httpx

from credbatch.db.pool import create_pool
from credbatch.signing.keys import KeyRing
from services.signer.app import create_signer_app
from tests.server.test_http_readiness import closed_port
from tests.services.public.oid4vci_world import KEK, SIGNER_TOKEN


async def _get(pool: asyncpg.Pool, path: str) -> httpx.Response:
    app = create_signer_app(pool, KeyRing(pool, KEK, signer=True), SIGNER_TOKEN)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://signer") as client:
        return await client.get(path)


async def test_ready_while_the_database_answers(signer_pool: asyncpg.Pool) -> None:
    assert (await _get(signer_pool, "/readyz")).status_code == 200
    assert (await _get(signer_pool, "/healthz")).status_code == 200


async def test_not_ready_but_alive_when_the_pool_cannot_reach_the_database() -> None:
    url = f"postgresql://credbatch_signer@127.0.0.1:{closed_port()}/credbatch"
    pool = await create_pool(url, min_size=0)
    try:
        response = await _get(pool, "/readyz")
        assert (await _get(pool, "/healthz")).status_code == 200
    finally:
        await pool.close()
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
