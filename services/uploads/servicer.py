"""UploadService servicer (its behaviour arrives with the uploads issue)."""

from __future__ import annotations

from credbatch.gen.uploads.v1 import uploads_service_pb2_grpc


class UploadServicer(uploads_service_pb2_grpc.UploadServiceServicer):
    """Every RPC answers UNIMPLEMENTED until the uploads issue lands."""
