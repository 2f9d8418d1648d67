"""BatchStatusService servicer: requests to domain calls and back, nothing more."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from credbatch import paging
from credbatch.auth.caller import current_caller
from credbatch.batches.mapping import batch_to_proto
from credbatch.batches.model import BatchView
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2, batches_service_pb2_grpc
from services.batch_status.filters import parse_filter
from services.batch_status.mapping import (
    batch_id_from_name,
    contact_request_from_proto,
    contact_response,
    list_response,
    records_response,
    report_states,
    resend_request_from_proto,
    resend_response,
    revoke_request_from_proto,
    revoke_response,
)
from services.batch_status.records import parse_record_filter
from services.batch_status.status import BatchStatus
from services.batch_status.watch import end_reason

Context = grpc.aio.ServicerContext[Any, Any]
LIST_BATCHES = "ListBatches"
LIST_RECORDS = "ListRecords"
# The trailing metadata key that tells a client why WatchBatch ended with OK.
WATCH_END_REASON_KEY = "credbatch-watch-end-reason"


class BatchStatusServicer(batches_service_pb2_grpc.BatchStatusServiceServicer):
    """History, progress, report, watch, retry, cancel, revoke, resend, contact corrections
    (status.BatchStatus)."""

    def __init__(self, status: BatchStatus) -> None:
        self._status = status

    async def ListBatches(
        self, request: batches_service_pb2.ListBatchesRequest, context: Context
    ) -> batches_service_pb2.ListBatchesResponse:
        size = paging.page_size(request.page_size)
        batch_filter = parse_filter(request.filter)
        after = paging.decode_token(LIST_BATCHES, request.page_token, request.filter)
        page = await self._status.list(current_caller(), batch_filter, after, size)
        token = (
            ""
            if page.next_position is None
            else paging.encode_token(LIST_BATCHES, page.next_position, request.filter)
        )
        return list_response(page, token)

    async def GetBatch(
        self, request: batches_service_pb2.GetBatchRequest, context: Context
    ) -> batch_pb2.Batch:
        view = await self._status.get(current_caller(), batch_id_from_name(request.name))
        return batch_to_proto(view)

    async def DownloadBatchReport(
        self, request: batches_service_pb2.DownloadBatchReportRequest, context: Context
    ) -> AsyncIterator[batches_service_pb2.DownloadBatchReportResponse]:
        batch_id = batch_id_from_name(request.name)
        states = report_states(request.states)
        async for chunk in self._status.report(current_caller(), batch_id, states):
            yield batches_service_pb2.DownloadBatchReportResponse(chunk=chunk)

    async def ListRecords(
        self, request: batches_service_pb2.ListRecordsRequest, context: Context
    ) -> batches_service_pb2.ListRecordsResponse:
        batch_id = batch_id_from_name(request.parent, "parent")
        size = paging.page_size(request.page_size)
        states = parse_record_filter(request.filter)
        parent = request.parent
        after = paging.decode_row_token(LIST_RECORDS, parent, request.page_token, request.filter)
        page = await self._status.records(current_caller(), batch_id, states, after, size)
        token = (
            ""
            if page.next_after is None
            else paging.encode_row_token(LIST_RECORDS, parent, page.next_after, request.filter)
        )
        return records_response(page, token)

    async def WatchBatch(
        self, request: batches_service_pb2.WatchBatchRequest, context: Context
    ) -> AsyncIterator[batch_pb2.Batch]:
        batch_id = batch_id_from_name(request.name)
        last: BatchView | None = None
        async for view in self._status.watch(current_caller(), batch_id):
            last = view
            yield batch_to_proto(view)
        if last is not None:
            context.set_trailing_metadata(((WATCH_END_REASON_KEY, end_reason(last).value),))

    async def RetryFailedRecords(
        self, request: batches_service_pb2.RetryFailedRecordsRequest, context: Context
    ) -> batch_pb2.Batch:
        view = await self._status.retry(current_caller(), batch_id_from_name(request.name))
        return batch_to_proto(view)

    async def CancelBatch(
        self, request: batches_service_pb2.CancelBatchRequest, context: Context
    ) -> batch_pb2.Batch:
        view = await self._status.cancel(current_caller(), batch_id_from_name(request.name))
        return batch_to_proto(view)

    async def RevokeRecords(
        self, request: batches_service_pb2.RevokeRecordsRequest, context: Context
    ) -> batches_service_pb2.RevokeRecordsResponse:
        revocation = revoke_request_from_proto(request)
        view, revoked = await self._status.revoke(current_caller(), revocation)
        return revoke_response(view, revoked)

    async def ResendInvitations(
        self, request: batches_service_pb2.ResendInvitationsRequest, context: Context
    ) -> batches_service_pb2.ResendInvitationsResponse:
        resend = resend_request_from_proto(request)
        view, done = await self._status.resend(current_caller(), resend)
        return resend_response(view, done)

    async def UpdateRecordContact(
        self, request: batches_service_pb2.UpdateRecordContactRequest, context: Context
    ) -> batches_service_pb2.UpdateRecordContactResponse:
        change = contact_request_from_proto(request)
        view, done = await self._status.update_contact(current_caller(), change)
        return contact_response(view, done)
