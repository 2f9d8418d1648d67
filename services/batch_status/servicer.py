"""BatchStatusService servicer (its behaviour arrives with the batch status issue)."""

from __future__ import annotations

from credbatch.gen.batches.v1 import batches_service_pb2_grpc


class BatchStatusServicer(batches_service_pb2_grpc.BatchStatusServiceServicer):
    """Every RPC answers UNIMPLEMENTED until the batch status issue lands."""
