"""UploadService servicer: a thin adapter between the stream and the upload flow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from credbatch.auth.caller import current_caller
from credbatch.gen.uploads.v1 import uploads_service_pb2, uploads_service_pb2_grpc
from services.uploads import mapping
from services.uploads.idle import idle_limited
from services.uploads.uploader import Uploader


class UploadServicer(uploads_service_pb2_grpc.UploadServiceServicer):
    """UploadBatch: header first, then raw CSV chunks; see services.uploads.uploader."""

    def __init__(self, uploader: Uploader, idle_timeout: float) -> None:
        self._uploader = uploader
        self._idle_timeout = idle_timeout

    async def UploadBatch(
        self,
        request_iterator: AsyncIterator[uploads_service_pb2.UploadBatchRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> uploads_service_pb2.UploadBatchResponse:
        requests = idle_limited(request_iterator, self._idle_timeout)
        header = await mapping.header_of(requests)
        outcome = await self._uploader.upload(
            current_caller(), mapping.request_from_proto(header), mapping.chunks_of(requests)
        )
        return mapping.response_to_proto(outcome)
