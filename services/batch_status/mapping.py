"""BatchStatusService requests ↔ domain values (the Batch message itself: credbatch.batches)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from credbatch import names
from credbatch.batches.contact import Reinvited
from credbatch.batches.mapping import (
    batch_to_proto,
    record_state_from_proto,
    record_state_to_proto,
    timestamp,
)
from credbatch.batches.model import BatchView, RecordState
from credbatch.batches.resend import Resent
from credbatch.errors import FieldViolation, InvalidArgument
from credbatch.gen.batches.v1 import batches_service_pb2, record_pb2
from services.batch_status.contact import ContactRequest, contact_request
from services.batch_status.records import RecordPage, RecordView
from services.batch_status.resend import ResendRequest, resend_request
from services.batch_status.revoke import RevokeRequest, revoke_request
from services.batch_status.status import Page

__all__ = [
    "batch_id_from_name",
    "contact_request_from_proto",
    "contact_response",
    "list_response",
    "records_response",
    "report_states",
    "resend_request_from_proto",
    "resend_response",
    "revoke_request_from_proto",
    "revoke_response",
]


def batch_id_from_name(name: str, field: str = "name") -> uuid.UUID:
    """The id in a `batches/{uuid}` resource name; INVALID_ARGUMENT naming ``field`` if not."""
    return names.parse_name(name, names.BATCHES, field)


def report_states(values: Iterable[int]) -> list[RecordState]:
    """The report's states filter; UNSPECIFIED or unknown numbers are refused."""
    states: list[RecordState] = []
    for index, value in enumerate(values):
        state = record_state_from_proto(value)
        if state is None:
            description = f"unknown record state {value}"
            raise InvalidArgument(
                f"invalid states[{index}]: {description}",
                reason="INVALID_STATE",
                violations=[FieldViolation(f"states[{index}]", description, "INVALID_STATE")],
            )
        states.append(state)
    return states


def list_response(page: Page, next_token: str) -> batches_service_pb2.ListBatchesResponse:
    return batches_service_pb2.ListBatchesResponse(
        batches=[batch_to_proto(view) for view in page.batches], next_page_token=next_token
    )


def record_to_proto(view: RecordView) -> record_pb2.Record:
    """The Record message of a view; unset times and absent values stay unset."""
    message = record_pb2.Record(
        name=f"{names.format_name(names.BATCHES, view.batch_id)}/records/{view.id}",
        row_number=view.row_number,
        state=record_state_to_proto(view.state),
        email=view.email or "",
        phone=view.phone or "",
        credential_id="" if view.credential_id is None else str(view.credential_id),
        certificate_uri=view.certificate_uri or "",
        error_code=view.error_code or "",
        error_message=view.error_message or "",
        create_time=timestamp(view.create_time),
        update_time=timestamp(view.update_time),
    )
    for field, value in (
        ("issue_time", view.issue_time),
        ("invite_time", view.invite_time),
        ("claim_time", view.claim_time),
        ("revoke_time", view.revoke_time),
    ):
        if value is not None:
            getattr(message, field).CopyFrom(timestamp(value))
    return message


def records_response(page: RecordPage, next_token: str) -> batches_service_pb2.ListRecordsResponse:
    return batches_service_pb2.ListRecordsResponse(
        records=[record_to_proto(view) for view in page.records], next_page_token=next_token
    )


def revoke_request_from_proto(request: batches_service_pb2.RevokeRecordsRequest) -> RevokeRequest:
    return revoke_request(
        batch_id_from_name(request.name), list(request.record_ids), request.reason
    )


def revoke_response(view: BatchView, revoked: int) -> batches_service_pb2.RevokeRecordsResponse:
    return batches_service_pb2.RevokeRecordsResponse(
        batch=batch_to_proto(view), revoked_count=revoked
    )


def resend_request_from_proto(
    request: batches_service_pb2.ResendInvitationsRequest,
) -> ResendRequest:
    return resend_request(
        batch_id_from_name(request.name), list(request.record_ids), request.request_id
    )


def resend_response(view: BatchView, done: Resent) -> batches_service_pb2.ResendInvitationsResponse:
    return batches_service_pb2.ResendInvitationsResponse(
        batch=batch_to_proto(view),
        resent_count=done.resent,
        claimed_count=done.claimed,
        revoked_count=done.revoked,
        failed_count=done.failed,
        cancelled_count=done.cancelled,
        in_progress_count=done.in_progress,
        busy_count=done.busy,
    )


def contact_request_from_proto(
    request: batches_service_pb2.UpdateRecordContactRequest,
) -> ContactRequest:
    batch_id, record_id = names.parse_record_name(request.name, "name")
    return contact_request(
        batch_id, record_id, list(request.update_mask.paths), request.email, request.phone
    )


def contact_response(
    view: BatchView, done: Reinvited
) -> batches_service_pb2.UpdateRecordContactResponse:
    return batches_service_pb2.UpdateRecordContactResponse(
        batch=batch_to_proto(view),
        record_state=record_state_to_proto(done.state),
        changed_fields=list(done.changed),
    )
