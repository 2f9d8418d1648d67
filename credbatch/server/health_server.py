"""grpc.health.v1 for a process that serves no gRPC API: the relay, workers, webhook dispatchers.

Kubernetes probes them as it probes the services (native gRPC probes), on
``CREDBATCH_HEALTH_PORT``; 0 serves nothing. The status follows the process's dependencies
(``credbatch.server.health``): NOT_SERVING while PostgreSQL or RabbitMQ is unreachable, SERVING
once they are back, and NOT_SERVING for good once the process begins to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from credbatch.server.health import INTERVAL_SECONDS, DependencyCheck, DependencyHealth

log = logging.getLogger(__name__)


class HealthServer:
    """A grpc.aio server with the Health service alone, for ``""`` and ``component``."""

    def __init__(
        self,
        component: str,
        checks: Sequence[DependencyCheck],
        *,
        interval: float = INTERVAL_SECONDS,
    ) -> None:
        self.health = HealthServicer()
        self._dependencies = DependencyHealth(
            self.health, ("", component), checks, interval=interval
        )
        self._server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)

    async def start(self, host: str, port: int) -> int:
        bound = self._server.add_insecure_port(f"{host}:{port}")
        if bound == 0:
            raise OSError(f"cannot listen on {host}:{port}")
        await self._server.start()
        await self._dependencies.start()
        return bound

    async def stop(self) -> None:
        await self._dependencies.stop()
        await self.health.enter_graceful_shutdown()
        # Only health checks to finish: no grace needed.
        await self._server.stop(0)


@contextlib.asynccontextmanager
async def serving_health(
    component: str,
    host: str,
    port: int,
    checks: Sequence[DependencyCheck],
    stop: asyncio.Event,
    *,
    interval: float = INTERVAL_SECONDS,
) -> AsyncIterator[HealthServer | None]:
    """Serve health on ``port`` while the block runs (nothing when ``port`` is 0).

    NOT_SERVING for good from the moment ``stop`` is set, while the process drains.
    """
    if port == 0:
        yield None
        return
    server = HealthServer(component, checks, interval=interval)
    bound = await server.start(host, port)
    log.info("%s health on %s:%d", component, host, bound)

    async def not_serving_once_stopping() -> None:
        await stop.wait()
        await server.health.enter_graceful_shutdown()

    stopping = asyncio.create_task(not_serving_once_stopping())
    try:
        yield server
    finally:
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
        await server.stop()
