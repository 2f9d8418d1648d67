"""The UploadService process."""

from __future__ import annotations

import asyncpg

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.gen.uploads.v1 import uploads_service_pb2, uploads_service_pb2_grpc
from credbatch.server.health import postgres_check
from credbatch.server.runner import ServiceSpec, serve_until_signalled
from services.uploads.allocator import fix_mmap_threshold
from services.uploads.servicer import UploadServicer
from services.uploads.uploader import Uploader
from services.uploads.validation_pool import ValidationPool

SERVICE_NAME = uploads_service_pb2.DESCRIPTOR.services_by_name["UploadService"].full_name


def service_specs(
    settings: Settings, pool: asyncpg.Pool, validation: ValidationPool | None = None
) -> list[ServiceSpec]:
    servicer = UploadServicer(Uploader(settings, pool, validation), settings.upload_idle_timeout)
    return [
        ServiceSpec(
            SERVICE_NAME,
            lambda server: uploads_service_pb2_grpc.add_UploadServiceServicer_to_server(
                servicer, server
            ),
        )
    ]


async def serve(settings: Settings) -> None:
    # Before any upload, so its large buffers go back to the system when freed (see the module).
    fix_mmap_threshold()
    # Uploads hold a connection only for short transactions, never while a client streams.
    pool = await create_pool(
        settings.app_database_url, **settings.pools.args("uploads"), application_name="uploads"
    )
    # Started before serving, reused by every upload: a process costs a second or so to start.
    validation = (
        ValidationPool(settings.validation_processes) if settings.validation_processes > 1 else None
    )
    try:
        if validation is not None:
            await validation.start()
        await serve_until_signalled(
            settings,
            "uploads",
            settings.uploads_port,
            service_specs(settings, pool, validation),
            [postgres_check(pool)],
            audit_pool=pool,
        )
    finally:
        if validation is not None:
            validation.close()
        await pool.close()
