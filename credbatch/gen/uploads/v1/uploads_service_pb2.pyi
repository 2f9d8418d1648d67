import datetime

from credbatch.gen.batches.v1 import batch_pb2 as _batch_pb2
from credbatch.gen.common.v1 import claim_mode_pb2 as _claim_mode_pb2
from credbatch.gen.common.v1 import medium_pb2 as _medium_pb2
from credbatch.gen.uploads.v1 import validation_report_pb2 as _validation_report_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UploadBatchHeader(_message.Message):
    __slots__ = ("schema", "mediums", "email_template", "sms_template", "certificate_template", "filename", "request_id", "validate_only", "department", "credential_validity", "claim_mode", "reminder_days", "reminder_email_template", "reminder_sms_template")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    MEDIUMS_FIELD_NUMBER: _ClassVar[int]
    EMAIL_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    SMS_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    DEPARTMENT_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_VALIDITY_FIELD_NUMBER: _ClassVar[int]
    CLAIM_MODE_FIELD_NUMBER: _ClassVar[int]
    REMINDER_DAYS_FIELD_NUMBER: _ClassVar[int]
    REMINDER_EMAIL_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    REMINDER_SMS_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    schema: str
    mediums: _containers.RepeatedScalarFieldContainer[_medium_pb2.Medium]
    email_template: str
    sms_template: str
    certificate_template: str
    filename: str
    request_id: str
    validate_only: bool
    department: str
    credential_validity: _duration_pb2.Duration
    claim_mode: _claim_mode_pb2.ClaimMode
    reminder_days: _containers.RepeatedScalarFieldContainer[int]
    reminder_email_template: str
    reminder_sms_template: str
    def __init__(self, schema: _Optional[str] = ..., mediums: _Optional[_Iterable[_Union[_medium_pb2.Medium, str]]] = ..., email_template: _Optional[str] = ..., sms_template: _Optional[str] = ..., certificate_template: _Optional[str] = ..., filename: _Optional[str] = ..., request_id: _Optional[str] = ..., validate_only: _Optional[bool] = ..., department: _Optional[str] = ..., credential_validity: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., claim_mode: _Optional[_Union[_claim_mode_pb2.ClaimMode, str]] = ..., reminder_days: _Optional[_Iterable[int]] = ..., reminder_email_template: _Optional[str] = ..., reminder_sms_template: _Optional[str] = ...) -> None: ...

class UploadBatchRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UploadBatchHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[UploadBatchHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadBatchResponse(_message.Message):
    __slots__ = ("batch", "report")
    BATCH_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    batch: _batch_pb2.Batch
    report: _validation_report_pb2.ValidationReport
    def __init__(self, batch: _Optional[_Union[_batch_pb2.Batch, _Mapping]] = ..., report: _Optional[_Union[_validation_report_pb2.ValidationReport, _Mapping]] = ...) -> None: ...
