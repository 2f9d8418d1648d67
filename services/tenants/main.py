"""The TenantService process."""

from __future__ import annotations

import asyncpg

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.gen.tenants.v1 import tenants_service_pb2, tenants_service_pb2_grpc
from credbatch.server.health import postgres_check
from credbatch.server.runner import ServiceSpec, serve_until_signalled
from services.tenants.audit import AuditTrail
from services.tenants.erasure import HolderErasure
from services.tenants.profiles import TenantProfiles
from services.tenants.servicer import TenantServicer

SERVICE_NAME = tenants_service_pb2.DESCRIPTOR.services_by_name["TenantService"].full_name


def service_specs(settings: Settings, pool: asyncpg.Pool) -> list[ServiceSpec]:
    servicer = TenantServicer(
        TenantProfiles(pool),
        settings.public_url,
        AuditTrail(pool),
        HolderErasure(pool, settings.default_region),
    )
    return [
        ServiceSpec(
            SERVICE_NAME,
            lambda server: tenants_service_pb2_grpc.add_TenantServiceServicer_to_server(
                servicer, server
            ),
        )
    ]


async def serve(settings: Settings) -> None:
    pool = await create_pool(
        settings.app_database_url, **settings.pools.args("tenants"), application_name="tenants"
    )
    try:
        await serve_until_signalled(
            settings,
            "tenants",
            settings.tenants_port,
            service_specs(settings, pool),
            [postgres_check(pool)],
            audit_pool=pool,
        )
    finally:
        await pool.close()
