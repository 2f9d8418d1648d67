"""Run one gRPC service process: tracing, metrics, the edge, health, reflection, stop.

Reflection is served only when configured (``Settings.reflection``). Health follows the
process's dependencies (``credbatch.server.health``): NOT_SERVING while one is unreachable,
SERVING again when it answers.

Stopping (SIGTERM or SIGINT) first turns health to NOT_SERVING so load balancers stop sending
work, then stops the server with a grace period for in-flight RPCs (grpc's
async_greeter_server_with_graceful_shutdown example).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from credbatch.auth.tokens import TokenVerifier
from credbatch.config import Settings
from credbatch.server.edge import EdgeInterceptor
from credbatch.server.health import INTERVAL_SECONDS, DependencyCheck, DependencyHealth
from credbatch.server.reflection import enable_server_reflection
from credbatch.server.rpc_metrics import RpcMetricsInterceptor
from credbatch.telemetry import TracingInterceptor

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
MAX_CONCURRENT_STREAMS = 100
"""Streams one client connection may have open: one connection cannot hold every upload."""
MAX_CONNECTION_AGE_MS = 30 * 60 * 1000
MAX_CONNECTION_AGE_GRACE_MS = 10 * 60 * 1000
"""Connections are told to go away after their age, so clients re-balance across replicas
and no connection lives forever; RPCs in flight then get the grace period to finish (a long
upload or WatchBatch beyond it is cut and must be resent or re-watched)."""


@dataclass(frozen=True)
class ServiceSpec:
    """A servicer to serve: its full name (for health and reflection) and its registration."""

    full_name: str
    register: Callable[[grpc.aio.Server], None]


class GrpcApp:
    """A started grpc.aio server with health (following ``checks``) and reflection."""

    def __init__(
        self,
        settings: Settings,
        services: Sequence[ServiceSpec],
        checks: Sequence[DependencyCheck] = (),
        *,
        check_interval: float = INTERVAL_SECONDS,
    ) -> None:
        self._settings = settings
        self._services = services
        self.health = HealthServicer()
        self._dependencies = DependencyHealth(
            self.health,
            ("", *(spec.full_name for spec in services)),
            checks,
            interval=check_interval,
        )
        # The first interceptor is the outermost: metrics see the status the caller gets.
        self.server = grpc.aio.server(
            interceptors=[
                TracingInterceptor(),
                RpcMetricsInterceptor(),
                EdgeInterceptor(TokenVerifier(settings)),
            ],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS),
                ("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
                ("grpc.max_connection_age_grace_ms", MAX_CONNECTION_AGE_GRACE_MS),
            ],
        )
        for spec in services:
            spec.register(self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        # Reflection hands anyone the whole API surface without a token: on in development,
        # off in production unless CREDBATCH_REFLECTION=on (credbatch.config).
        if settings.reflection:
            enable_server_reflection(
                [
                    *(spec.full_name for spec in services),
                    health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                ],
                self.server,
            )
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        self.port = self.server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot listen on {host}:{port}")
        await self.server.start()
        await self._dependencies.start()
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        await self._dependencies.stop()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self._settings.grace_seconds if grace is None else grace)


async def serve_until_signalled(
    settings: Settings,
    component: str,
    port: int,
    services: Sequence[ServiceSpec],
    checks: Sequence[DependencyCheck] = (),
) -> None:
    """Serve until SIGTERM/SIGINT, then stop gracefully; health follows ``checks``."""
    app = GrpcApp(settings, services, checks)
    bound = await app.start(settings.host, port)
    log.info("%s listening on %s:%d", component, settings.host, bound)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("%s stopping (grace %.1fs)", component, settings.grace_seconds)
    await app.stop()
    log.info("%s stopped", component)
