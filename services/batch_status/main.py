"""The BatchStatusService process."""

from __future__ import annotations

import asyncpg

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.gen.batches.v1 import batches_service_pb2, batches_service_pb2_grpc
from credbatch.server.health import postgres_check
from credbatch.server.runner import ServiceSpec, serve_until_signalled
from services.batch_status.servicer import BatchStatusServicer
from services.batch_status.status import BatchStatus
from services.batch_status.watch import WatchLimits

SERVICE_NAME = batches_service_pb2.DESCRIPTOR.services_by_name["BatchStatusService"].full_name


def service_specs(settings: Settings, pool: asyncpg.Pool) -> list[ServiceSpec]:
    limits = WatchLimits(
        per_caller=settings.watch_max_per_caller,
        total=settings.watch_max,
        max_seconds=settings.watch_max_seconds,
    )
    status = BatchStatus(
        pool,
        settings.public_url,
        limits,
        claim_ttl=settings.claim_ttl,
        default_region=settings.default_region,
    )
    servicer = BatchStatusServicer(status)
    return [
        ServiceSpec(
            SERVICE_NAME,
            lambda server: batches_service_pb2_grpc.add_BatchStatusServiceServicer_to_server(
                servicer, server
            ),
        )
    ]


async def serve(settings: Settings) -> None:
    pool = await create_pool(
        settings.app_database_url,
        **settings.pools.args("batch_status"),
        application_name="batch_status",
    )
    try:
        await serve_until_signalled(
            settings,
            "batch_status",
            settings.batches_port,
            service_specs(settings, pool),
            [postgres_check(pool)],
        )
    finally:
        await pool.close()
