"""TemplateService servicer (its behaviour arrives with the templates issue)."""

from __future__ import annotations

from credbatch.gen.templates.v1 import templates_service_pb2_grpc


class TemplateServicer(templates_service_pb2_grpc.TemplateServiceServicer):
    """Every RPC answers UNIMPLEMENTED until the templates issue lands."""
