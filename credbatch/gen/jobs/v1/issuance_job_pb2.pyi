from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_KIND_UNSPECIFIED: _ClassVar[JobKind]
    JOB_KIND_INVITATION: _ClassVar[JobKind]
    JOB_KIND_REMINDER: _ClassVar[JobKind]
JOB_KIND_UNSPECIFIED: JobKind
JOB_KIND_INVITATION: JobKind
JOB_KIND_REMINDER: JobKind

class IssuanceJob(_message.Message):
    __slots__ = ("tenant_id", "batch_id", "record_id", "attempt", "kind", "reminder_step")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    RECORD_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REMINDER_STEP_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    batch_id: str
    record_id: str
    attempt: int
    kind: JobKind
    reminder_step: int
    def __init__(self, tenant_id: _Optional[str] = ..., batch_id: _Optional[str] = ..., record_id: _Optional[str] = ..., attempt: _Optional[int] = ..., kind: _Optional[_Union[JobKind, str]] = ..., reminder_step: _Optional[int] = ...) -> None: ...

class IssuanceJobs(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[IssuanceJob]
    def __init__(self, jobs: _Optional[_Iterable[_Union[IssuanceJob, _Mapping]]] = ...) -> None: ...
