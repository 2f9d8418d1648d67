"""The TemplateService process."""

from __future__ import annotations

import asyncpg

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.gen.templates.v1 import templates_service_pb2, templates_service_pb2_grpc
from credbatch.server.health import postgres_check
from credbatch.server.runner import ServiceSpec, serve_until_signalled
from credbatch.templating.runner import Renderer, RenderPool
from services.templates.catalog import TemplateCatalog
from services.templates.servicer import TemplateServicer

SERVICE_NAME = templates_service_pb2.DESCRIPTOR.services_by_name["TemplateService"].full_name


def service_specs(settings: Settings, pool: asyncpg.Pool, renderer: Renderer) -> list[ServiceSpec]:
    servicer = TemplateServicer(TemplateCatalog(pool, renderer))
    return [
        ServiceSpec(
            SERVICE_NAME,
            lambda server: templates_service_pb2_grpc.add_TemplateServiceServicer_to_server(
                servicer, server
            ),
        )
    ]


async def serve(settings: Settings) -> None:
    pool = await create_pool(
        settings.app_database_url, **settings.pools.args("templates"), application_name="templates"
    )
    # Creation's trial renders and previews run in processes of their own.
    renderer = RenderPool.from_settings(settings)
    await renderer.start()
    try:
        await serve_until_signalled(
            settings,
            "templates",
            settings.templates_port,
            service_specs(settings, pool, renderer),
            [postgres_check(pool)],
            audit_pool=pool,
        )
    finally:
        await renderer.close()
        await pool.close()
