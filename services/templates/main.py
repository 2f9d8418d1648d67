"""The TemplateService process."""

from __future__ import annotations

from credbatch.config import Settings
from credbatch.gen.templates.v1 import templates_service_pb2, templates_service_pb2_grpc
from credbatch.server.runner import ServiceSpec, serve_until_signalled
from services.templates.servicer import TemplateServicer

SERVICE_NAME = templates_service_pb2.DESCRIPTOR.services_by_name["TemplateService"].full_name


def service_specs(settings: Settings) -> list[ServiceSpec]:
    servicer = TemplateServicer()
    return [
        ServiceSpec(
            SERVICE_NAME,
            lambda server: templates_service_pb2_grpc.add_TemplateServiceServicer_to_server(
                servicer, server
            ),
        )
    ]


async def serve(settings: Settings) -> None:
    await serve_until_signalled(
        settings, "templates", settings.templates_port, service_specs(settings)
    )
