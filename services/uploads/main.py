"""The UploadService process."""

from __future__ import annotations

from credbatch.config import Settings
from credbatch.gen.uploads.v1 import uploads_service_pb2, uploads_service_pb2_grpc
from credbatch.server.runner import ServiceSpec, serve_until_signalled
from services.uploads.servicer import UploadServicer

SERVICE_NAME = uploads_service_pb2.DESCRIPTOR.services_by_name["UploadService"].full_name


def service_specs(settings: Settings) -> list[ServiceSpec]:
    servicer = UploadServicer()
    return [
        ServiceSpec(
            SERVICE_NAME,
            lambda server: uploads_service_pb2_grpc.add_UploadServiceServicer_to_server(
                servicer, server
            ),
        )
    ]


async def serve(settings: Settings) -> None:
    await serve_until_signalled(
        settings, "uploads", settings.uploads_port, service_specs(settings)
    )
