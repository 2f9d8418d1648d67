from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class IssuanceJob(_message.Message):
    __slots__ = ("tenant_id", "batch_id", "record_id", "attempt")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    batch_id: str
    record_id: str
    attempt: int
    def __init__(self, tenant_id: _Optional[str] = ..., batch_id: _Optional[str] = ..., record_id: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...
