"""Health that follows the dependencies: NOT_SERVING while one is unreachable, SERVING after.

A server that answers SERVING while its database is gone takes traffic it can only fail; one
that exits instead would turn a database blip into a restart storm. So the process keeps
running, a checker probes each dependency every ``interval`` seconds (a ``SELECT 1`` through
the pool, with a short timeout), and the grpc.health.v1 status follows: load balancers and
readiness probes stop sending work meanwhile, and get it back once the probe succeeds again.
The pool reconnects by itself, so recovery needs nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
from aio_pika.abc import AbstractConnection
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 2.0
TIMEOUT_SECONDS = 1.5

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class DependencyCheck:
    """A named probe: returns when the dependency answers, raises otherwise."""

    name: str
    probe: Callable[[], Awaitable[None]]


def postgres_check(pool: asyncpg.Pool, timeout: float = TIMEOUT_SECONDS) -> DependencyCheck:
    """``SELECT 1`` on a pooled connection, connecting first if the pool has none."""

    async def probe() -> None:
        async with pool.acquire(timeout=timeout) as conn:
            await conn.fetchval("SELECT 1", timeout=timeout)

    return DependencyCheck("postgresql", probe)


def rabbitmq_check(connection: AbstractConnection) -> DependencyCheck:
    """The broker connection is open: the client's heartbeats (or a failed read or write)
    clear it as soon as the broker goes away, and a robust connection sets it again once it
    has reconnected."""

    async def probe() -> None:
        if connection.is_closed or not connection.connected.is_set():
            raise ConnectionError("not connected to RabbitMQ")

    return DependencyCheck("rabbitmq", probe)


class DependencyHealth:
    """Keeps the health statuses of ``names`` in line with ``checks``."""

    def __init__(
        self,
        health: HealthServicer,
        names: Sequence[str],
        checks: Sequence[DependencyCheck],
        *,
        interval: float = INTERVAL_SECONDS,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self._health = health
        self._names = tuple(names)
        self._checks = tuple(checks)
        self._interval = interval
        self._timeout = timeout
        self._down: set[str] = set()
        self._status: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def _failed(self, check: DependencyCheck) -> bool:
        try:
            # The outer bound also covers a probe that ignores its own timeout.
            await asyncio.wait_for(check.probe(), self._timeout + 0.5)
        except Exception as error:
            if check.name not in self._down:
                # The type only: driver messages may quote connection details.
                log.warning("%s unreachable (%s): NOT_SERVING", check.name, type(error).__name__)
            return True
        if check.name in self._down:
            log.info("%s reachable again", check.name)
        return False

    async def check_once(self) -> bool:
        """Probe every dependency, set the statuses; True when all answered."""
        results = await asyncio.gather(*(self._failed(check) for check in self._checks))
        pairs = zip(self._checks, results, strict=True)
        self._down = {check.name for check, failed in pairs if failed}
        status = NOT_SERVING if self._down else SERVING
        if status != self._status:
            self._status = status
            for name in self._names:
                # Ignored once graceful shutdown has begun: stopping stays NOT_SERVING.
                await self._health.set(name, status)
        return not self._down

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.check_once()

    async def start(self) -> None:
        """Set the first statuses, then keep checking in the background."""
        await self.check_once()
        if self._checks:
            self._task = asyncio.create_task(self._loop(), name="dependency-health")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
