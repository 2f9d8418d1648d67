"""Proto <-> domain mapping of the UploadService (the only module here that knows *_pb2)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from credbatch.batches.claim_mode import ClaimMode
from credbatch.batches.mapping import CLAIM_MODES, batch_to_proto
from credbatch.errors import FieldViolation, InvalidArgument
from credbatch.gen.common.v1 import claim_mode_pb2, medium_pb2
from credbatch.gen.uploads.v1 import uploads_service_pb2, validation_report_pb2
from credbatch.schema.model import Medium
from services.uploads.model import UploadRequest
from services.uploads.uploader import UploadOutcome
from services.uploads.validator import Report

MAX_CHUNK_BYTES = 4 * 1024 * 1024

_MEDIUMS = {medium_pb2.MEDIUM_EMAIL: Medium.EMAIL, medium_pb2.MEDIUM_SMS: Medium.SMS}
# Unspecified is a wallet: the mode a caller gets without asking.
_CLAIM_MODES: dict[int, ClaimMode] = {
    claim_mode_pb2.CLAIM_MODE_UNSPECIFIED: ClaimMode.OID4VCI,
    **{number: mode for mode, number in CLAIM_MODES.items()},
}


def request_from_proto(header: uploads_service_pb2.UploadBatchHeader) -> UploadRequest:
    validity: float | None = None
    if header.HasField("credential_validity"):
        duration = header.credential_validity
        validity = duration.seconds + duration.nanos / 1e9
    return UploadRequest(
        schema=header.schema.strip(),
        mediums=tuple(_MEDIUMS.get(m) for m in header.mediums),
        email_template=header.email_template.strip(),
        sms_template=header.sms_template.strip(),
        certificate_template=header.certificate_template.strip(),
        filename=header.filename,
        request_id=header.request_id,
        validate_only=header.validate_only,
        department=header.department.strip(),
        credential_validity_seconds=validity,
        claim_mode=_CLAIM_MODES.get(header.claim_mode),
        reminder_days=tuple(header.reminder_days),
        reminder_email_template=header.reminder_email_template.strip(),
        reminder_sms_template=header.reminder_sms_template.strip(),
    )


def _stream_error(description: str, reason: str) -> InvalidArgument:
    return InvalidArgument(
        description, reason=reason, violations=[FieldViolation("part", description, reason)]
    )


async def header_of(
    requests: AsyncIterator[uploads_service_pb2.UploadBatchRequest],
) -> uploads_service_pb2.UploadBatchHeader:
    """The first message's header; refuses a stream that does not start with one."""
    async for first in requests:
        if first.WhichOneof("part") != "header":
            break
        return first.header
    raise _stream_error("the first message of the stream must be the header", "HEADER_FIRST")


async def chunks_of(
    requests: AsyncIterator[uploads_service_pb2.UploadBatchRequest],
) -> AsyncIterator[bytes]:
    """The file's bytes from the messages after the header."""
    async for message in requests:
        if message.WhichOneof("part") != "chunk":
            raise _stream_error("only the first message may be a header", "HEADER_REPEATED")
        if len(message.chunk) >= MAX_CHUNK_BYTES:
            raise _stream_error("each chunk must be smaller than 4 MiB", "CHUNK_TOO_LARGE")
        yield message.chunk


INT32_MAX = 2**31 - 1


def report_to_proto(report: Report) -> validation_report_pb2.ValidationReport:
    return validation_report_pb2.ValidationReport(
        valid=report.valid,
        rows_total=report.rows_total,
        # int32 on the wire; only a file of some 10^9 problems could reach it.
        error_count=min(report.error_count, INT32_MAX),
        errors=[
            validation_report_pb2.ValidationError(
                row=issue.row, column=issue.column, code=issue.code, message=issue.message
            )
            for issue in report.errors
        ],
    )


def response_to_proto(outcome: UploadOutcome) -> uploads_service_pb2.UploadBatchResponse:
    response = uploads_service_pb2.UploadBatchResponse(report=report_to_proto(outcome.report))
    if outcome.batch is not None:
        response.batch.CopyFrom(batch_to_proto(outcome.batch))
    return response
