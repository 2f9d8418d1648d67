import datetime

from credbatch.gen.common.v1 import claim_mode_pb2 as _claim_mode_pb2
from credbatch.gen.common.v1 import medium_pb2 as _medium_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BatchState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BATCH_STATE_UNSPECIFIED: _ClassVar[BatchState]
    BATCH_STATE_QUEUED: _ClassVar[BatchState]
    BATCH_STATE_IN_PROGRESS: _ClassVar[BatchState]
    BATCH_STATE_COMPLETED: _ClassVar[BatchState]
    BATCH_STATE_COMPLETED_WITH_ERRORS: _ClassVar[BatchState]
    BATCH_STATE_CANCELLED: _ClassVar[BatchState]
    BATCH_STATE_FAILED: _ClassVar[BatchState]

class RecordState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECORD_STATE_UNSPECIFIED: _ClassVar[RecordState]
    RECORD_STATE_PENDING: _ClassVar[RecordState]
    RECORD_STATE_QUEUED: _ClassVar[RecordState]
    RECORD_STATE_ISSUED: _ClassVar[RecordState]
    RECORD_STATE_INVITED: _ClassVar[RecordState]
    RECORD_STATE_FAILED: _ClassVar[RecordState]
    RECORD_STATE_CANCELLED: _ClassVar[RecordState]
    RECORD_STATE_CLAIMED: _ClassVar[RecordState]
    RECORD_STATE_REVOKED: _ClassVar[RecordState]
    RECORD_STATE_EXPIRED: _ClassVar[RecordState]

class DeliveryState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATE_UNSPECIFIED: _ClassVar[DeliveryState]
    DELIVERY_STATE_ACCEPTED: _ClassVar[DeliveryState]
    DELIVERY_STATE_DELIVERED: _ClassVar[DeliveryState]
    DELIVERY_STATE_DEFERRED: _ClassVar[DeliveryState]
    DELIVERY_STATE_BOUNCED: _ClassVar[DeliveryState]
    DELIVERY_STATE_FAILED: _ClassVar[DeliveryState]
BATCH_STATE_UNSPECIFIED: BatchState
BATCH_STATE_QUEUED: BatchState
BATCH_STATE_IN_PROGRESS: BatchState
BATCH_STATE_COMPLETED: BatchState
BATCH_STATE_COMPLETED_WITH_ERRORS: BatchState
BATCH_STATE_CANCELLED: BatchState
BATCH_STATE_FAILED: BatchState
RECORD_STATE_UNSPECIFIED: RecordState
RECORD_STATE_PENDING: RecordState
RECORD_STATE_QUEUED: RecordState
RECORD_STATE_ISSUED: RecordState
RECORD_STATE_INVITED: RecordState
RECORD_STATE_FAILED: RecordState
RECORD_STATE_CANCELLED: RecordState
RECORD_STATE_CLAIMED: RecordState
RECORD_STATE_REVOKED: RecordState
RECORD_STATE_EXPIRED: RecordState
DELIVERY_STATE_UNSPECIFIED: DeliveryState
DELIVERY_STATE_ACCEPTED: DeliveryState
DELIVERY_STATE_DELIVERED: DeliveryState
DELIVERY_STATE_DEFERRED: DeliveryState
DELIVERY_STATE_BOUNCED: DeliveryState
DELIVERY_STATE_FAILED: DeliveryState

class RecordCounts(_message.Message):
    __slots__ = ("pending", "queued", "issued", "invited", "failed", "cancelled", "claimed", "revoked", "expired", "delivered", "bounced")
    PENDING_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    ISSUED_FIELD_NUMBER: _ClassVar[int]
    INVITED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    BOUNCED_FIELD_NUMBER: _ClassVar[int]
    pending: int
    queued: int
    issued: int
    invited: int
    failed: int
    cancelled: int
    claimed: int
    revoked: int
    expired: int
    delivered: int
    bounced: int
    def __init__(self, pending: _Optional[int] = ..., queued: _Optional[int] = ..., issued: _Optional[int] = ..., invited: _Optional[int] = ..., failed: _Optional[int] = ..., cancelled: _Optional[int] = ..., claimed: _Optional[int] = ..., revoked: _Optional[int] = ..., expired: _Optional[int] = ..., delivered: _Optional[int] = ..., bounced: _Optional[int] = ...) -> None: ...

class Batch(_message.Message):
    __slots__ = ("name", "state", "schema", "schema_version", "mediums", "email_template", "sms_template", "certificate_template", "creator", "department", "filename", "create_time", "update_time", "complete_time", "total_records", "record_counts", "percent_done", "estimated_complete_time", "claim_mode", "reminder_days", "reminder_email_template", "reminder_sms_template", "reminders_sent")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    MEDIUMS_FIELD_NUMBER: _ClassVar[int]
    EMAIL_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    SMS_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    CREATOR_FIELD_NUMBER: _ClassVar[int]
    DEPARTMENT_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TIME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_RECORDS_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNTS_FIELD_NUMBER: _ClassVar[int]
    PERCENT_DONE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COMPLETE_TIME_FIELD_NUMBER: _ClassVar[int]
    CLAIM_MODE_FIELD_NUMBER: _ClassVar[int]
    REMINDER_DAYS_FIELD_NUMBER: _ClassVar[int]
    REMINDER_EMAIL_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    REMINDER_SMS_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    REMINDERS_SENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: BatchState
    schema: str
    schema_version: int
    mediums: _containers.RepeatedScalarFieldContainer[_medium_pb2.Medium]
    email_template: str
    sms_template: str
    certificate_template: str
    creator: str
    department: str
    filename: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    complete_time: _timestamp_pb2.Timestamp
    total_records: int
    record_counts: RecordCounts
    percent_done: float
    estimated_complete_time: _timestamp_pb2.Timestamp
    claim_mode: _claim_mode_pb2.ClaimMode
    reminder_days: _containers.RepeatedScalarFieldContainer[int]
    reminder_email_template: str
    reminder_sms_template: str
    reminders_sent: int
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[BatchState, str]] = ..., schema: _Optional[str] = ..., schema_version: _Optional[int] = ..., mediums: _Optional[_Iterable[_Union[_medium_pb2.Medium, str]]] = ..., email_template: _Optional[str] = ..., sms_template: _Optional[str] = ..., certificate_template: _Optional[str] = ..., creator: _Optional[str] = ..., department: _Optional[str] = ..., filename: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., total_records: _Optional[int] = ..., record_counts: _Optional[_Union[RecordCounts, _Mapping]] = ..., percent_done: _Optional[float] = ..., estimated_complete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., claim_mode: _Optional[_Union[_claim_mode_pb2.ClaimMode, str]] = ..., reminder_days: _Optional[_Iterable[int]] = ..., reminder_email_template: _Optional[str] = ..., reminder_sms_template: _Optional[str] = ..., reminders_sent: _Optional[int] = ...) -> None: ...
