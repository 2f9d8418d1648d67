"""BatchView → ``credbatch.batches.v1.Batch``: the one place a batch becomes a message.

Shared by the BatchStatusService and the UploadService (which returns the created batch).
"""

from __future__ import annotations

from datetime import datetime

from google.protobuf import timestamp_pb2

from credbatch import names
from credbatch.batches.claim_mode import ClaimMode
from credbatch.batches.model import BatchState, BatchView, RecordState
from credbatch.gen.batches.v1 import batch_pb2
from credbatch.gen.common.v1 import claim_mode_pb2, medium_pb2

_BATCH_STATES: dict[BatchState, batch_pb2.BatchState] = {
    BatchState.QUEUED: batch_pb2.BATCH_STATE_QUEUED,
    BatchState.IN_PROGRESS: batch_pb2.BATCH_STATE_IN_PROGRESS,
    BatchState.COMPLETED: batch_pb2.BATCH_STATE_COMPLETED,
    BatchState.COMPLETED_WITH_ERRORS: batch_pb2.BATCH_STATE_COMPLETED_WITH_ERRORS,
    BatchState.CANCELLED: batch_pb2.BATCH_STATE_CANCELLED,
    BatchState.FAILED: batch_pb2.BATCH_STATE_FAILED,
}
_RECORD_STATES: dict[RecordState, batch_pb2.RecordState] = {
    RecordState.PENDING: batch_pb2.RECORD_STATE_PENDING,
    RecordState.QUEUED: batch_pb2.RECORD_STATE_QUEUED,
    RecordState.ISSUED: batch_pb2.RECORD_STATE_ISSUED,
    RecordState.INVITED: batch_pb2.RECORD_STATE_INVITED,
    RecordState.FAILED: batch_pb2.RECORD_STATE_FAILED,
    RecordState.CANCELLED: batch_pb2.RECORD_STATE_CANCELLED,
    RecordState.CLAIMED: batch_pb2.RECORD_STATE_CLAIMED,
    RecordState.REVOKED: batch_pb2.RECORD_STATE_REVOKED,
    RecordState.EXPIRED: batch_pb2.RECORD_STATE_EXPIRED,
}
_RECORD_STATES_BACK: dict[int, RecordState] = {v: k for k, v in _RECORD_STATES.items()}
_BATCH_STATES_BACK: dict[int, BatchState] = {v: k for k, v in _BATCH_STATES.items()}
CLAIM_MODES: dict[ClaimMode, claim_mode_pb2.ClaimMode] = {
    ClaimMode.OID4VCI: claim_mode_pb2.CLAIM_MODE_OID4VCI,
    ClaimMode.DOWNLOAD: claim_mode_pb2.CLAIM_MODE_DOWNLOAD,
}
_MEDIUMS: dict[str, medium_pb2.Medium] = {
    "EMAIL": medium_pb2.MEDIUM_EMAIL,
    "SMS": medium_pb2.MEDIUM_SMS,
}


def batch_state_to_proto(state: BatchState) -> batch_pb2.BatchState:
    return _BATCH_STATES[state]


def batch_state_from_proto(value: int) -> BatchState | None:
    """The domain state of an enum number; None for UNSPECIFIED or unknown numbers."""
    return _BATCH_STATES_BACK.get(value)


def record_state_to_proto(state: RecordState) -> batch_pb2.RecordState:
    return _RECORD_STATES[state]


def record_state_from_proto(value: int) -> RecordState | None:
    """The domain state of an enum number; None for UNSPECIFIED or unknown numbers."""
    return _RECORD_STATES_BACK.get(value)


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def batch_to_proto(view: BatchView) -> batch_pb2.Batch:
    """The Batch message for a view (unset optional times stay unset)."""
    counts = view.counts
    message = batch_pb2.Batch(
        name=view.name,
        state=_BATCH_STATES[view.state],
        schema=names.schema_name(view.schema_id),
        schema_version=view.schema_version,
        mediums=[_MEDIUMS[m] for m in view.mediums if m in _MEDIUMS],
        email_template=names.optional_name(names.EMAIL_TEMPLATES, view.email_template_id),
        sms_template=names.optional_name(names.SMS_TEMPLATES, view.sms_template_id),
        certificate_template=names.optional_name(
            names.CERTIFICATE_TEMPLATES, view.certificate_template_id
        ),
        creator=view.creator,
        department=view.department,
        filename=view.filename,
        claim_mode=CLAIM_MODES[view.claim_mode],
        create_time=timestamp(view.create_time),
        update_time=timestamp(view.update_time),
        total_records=view.total,
        record_counts=batch_pb2.RecordCounts(
            pending=counts.pending,
            queued=counts.queued,
            issued=counts.issued,
            invited=counts.invited,
            failed=counts.failed,
            cancelled=counts.cancelled,
            claimed=counts.claimed,
            revoked=counts.revoked,
            expired=counts.expired,
            delivered=counts.delivered,
            bounced=counts.bounced,
        ),
        percent_done=view.percent_done,
        reminder_days=list(view.reminder_days),
        reminder_email_template=names.optional_name(
            names.EMAIL_TEMPLATES, view.reminder_email_template_id
        ),
        reminder_sms_template=names.optional_name(
            names.SMS_TEMPLATES, view.reminder_sms_template_id
        ),
        reminders_sent=min(view.reminders_sent, 2**31 - 1),
    )
    if view.complete_time is not None:
        message.complete_time.CopyFrom(timestamp(view.complete_time))
    if view.estimated_complete_time is not None:
        message.estimated_complete_time.CopyFrom(timestamp(view.estimated_complete_time))
    return message
