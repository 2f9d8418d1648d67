"""Readiness over HTTP: the outcome follows the probe, is kept for the ttl, and is shared."""

from __future__ import annotations

import asyncio
import socket

import httpx
from starlette.applications import Starlette

from credbatch.db.pool import create_pool
from credbatch.server.health import DependencyCheck, postgres_check
from credbatch.server.http_readiness import CachedReadiness, probe_routes


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Dependency:
    """A dependency the test switches on and off, counting the probes it answers."""

    def __init__(self) -> None:
        self.up = True
        self.probes = 0
        self.delay = 0.0

    async def probe(self) -> None:
        self.probes += 1
        await asyncio.sleep(self.delay)
        if not self.up:
            raise ConnectionRefusedError

    def check(self) -> DependencyCheck:
        return DependencyCheck("db", self.probe)


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_the_outcome_is_kept_for_the_ttl_then_probed_again() -> None:
    clock, db = Clock(), Dependency()
    readiness = CachedReadiness([db.check()], ttl=1.0, clock=clock)
    assert await readiness.down() == frozenset()
    db.up = False
    clock.now += 0.5
    # Within the ttl: the kept outcome, no query.
    assert await readiness.down() == frozenset()
    assert db.probes == 1
    clock.now += 0.6
    assert await readiness.down() == {"db"}
    assert db.probes == 2
    db.up = True
    clock.now += 1.0
    assert await readiness.down() == frozenset()


async def test_concurrent_probes_share_one_check() -> None:
    db = Dependency()
    db.delay = 0.1
    readiness = CachedReadiness([db.check()], ttl=1.0)
    results = await asyncio.gather(*(readiness.down() for _ in range(20)))
    assert results == [frozenset()] * 20
    assert db.probes == 1


async def test_a_probe_that_hangs_counts_as_down_after_the_timeout() -> None:
    db = Dependency()
    db.delay = 30.0
    readiness = CachedReadiness([db.check()], ttl=0.0, timeout=0.1)
    started = asyncio.get_running_loop().time()
    assert await readiness.down() == {"db"}
    assert asyncio.get_running_loop().time() - started < 2


async def test_liveness_ignores_the_dependency_and_readiness_follows_it() -> None:
    db = Dependency()
    app = Starlette(routes=probe_routes(CachedReadiness([db.check()], ttl=0.0)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        assert (await client.get("/readyz")).status_code == 200
        db.up = False
        assert (await client.get("/healthz")).status_code == 200
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert "db" in response.json()["error_description"]
    assert response.headers["cache-control"] == "no-store"


async def test_a_pool_to_a_closed_port_is_not_ready() -> None:
    pool = await create_pool(f"postgresql://postgres@127.0.0.1:{closed_port()}/x", min_size=0)
    try:
        readiness = CachedReadiness([postgres_check(pool, timeout=1.0)], ttl=0.0)
        assert await readiness.down() == {"postgresql"}
    finally:
        await pool.close()
