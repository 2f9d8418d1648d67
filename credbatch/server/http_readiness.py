"""Liveness and readiness over HTTP for the Starlette processes (public endpoints, signer).

``/healthz`` answers 200 while the process serves HTTP at all: liveness, which must not follow
the database, or a database outage would restart every pod at once and gain nothing (the pool
reconnects by itself). ``/readyz`` answers 200 only while PostgreSQL answers a ``SELECT 1``
through the process's own pool (``credbatch.server.health.postgres_check``), and 503
otherwise, so the Service stops sending requests the pod could only fail.

Every replica is probed by every kubelet and perhaps a load balancer too: the outcome is kept
for ``ttl`` seconds and concurrent probes share one check, so probes cost the database at most
one query per ``ttl`` per pod, and a slow database holds no more than one connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from credbatch.server.health import TIMEOUT_SECONDS, DependencyCheck

log = logging.getLogger(__name__)

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
TTL_SECONDS = 1.0
_NO_STORE = {"Cache-Control": "no-store"}


class CachedReadiness:
    """The outcome of ``checks``, probed at most once per ``ttl`` seconds."""

    def __init__(
        self,
        checks: Sequence[DependencyCheck],
        *,
        ttl: float = TTL_SECONDS,
        timeout: float = TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._checks = tuple(checks)
        self._ttl = ttl
        self._timeout = timeout
        self._clock = clock
        self._lock = asyncio.Lock()
        self._down: frozenset[str] = frozenset()
        self._checked_at: float | None = None

    async def down(self) -> frozenset[str]:
        """The names of the dependencies that did not answer (empty: ready)."""
        async with self._lock:
            now = self._clock()
            if self._checked_at is None or now - self._checked_at >= self._ttl:
                results = await asyncio.gather(*(self._failed(c) for c in self._checks))
                down = frozenset(
                    c.name for c, failed in zip(self._checks, results, strict=True) if failed
                )
                for name in sorted(down - self._down):
                    log.warning("%s unreachable: not ready", name)
                for name in sorted(self._down - down):
                    log.info("%s reachable again: ready", name)
                self._down = down
                self._checked_at = self._clock()
            return self._down

    async def _failed(self, check: DependencyCheck) -> bool:
        try:
            # The outer bound also covers a probe that ignores its own timeout.
            await asyncio.wait_for(check.probe(), self._timeout + 0.5)
        except Exception as error:
            # The type only: driver messages may quote connection details.
            log.debug("%s probe failed (%s)", check.name, type(error).__name__)
            return True
        return False


def probe_routes(readiness: CachedReadiness) -> list[Route]:
    """``/healthz`` (liveness, no dependency) and ``/readyz`` (``readiness``)."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers=_NO_STORE)

    async def readyz(request: Request) -> Response:
        down = await readiness.down()
        if down:
            # The error shape of the public endpoints ({"error", "error_description"}).
            body = {
                "error": "temporarily_unavailable",
                "error_description": f"Not ready: {', '.join(sorted(down))} does not answer",
            }
            return JSONResponse(body, status_code=503, headers=_NO_STORE)
        return JSONResponse({"status": "ok"}, headers=_NO_STORE)

    return [Route(LIVENESS_PATH, healthz), Route(READINESS_PATH, readyz)]
