import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditActorKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIT_ACTOR_KIND_UNSPECIFIED: _ClassVar[AuditActorKind]
    AUDIT_ACTOR_KIND_USER: _ClassVar[AuditActorKind]
    AUDIT_ACTOR_KIND_SERVICE: _ClassVar[AuditActorKind]
    AUDIT_ACTOR_KIND_SYSTEM: _ClassVar[AuditActorKind]
AUDIT_ACTOR_KIND_UNSPECIFIED: AuditActorKind
AUDIT_ACTOR_KIND_USER: AuditActorKind
AUDIT_ACTOR_KIND_SERVICE: AuditActorKind
AUDIT_ACTOR_KIND_SYSTEM: AuditActorKind

class AuditEvent(_message.Message):
    __slots__ = ("name", "occur_time", "actor", "actor_kind", "action", "resource", "outcome", "request_id", "trace_id", "details")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OCCUR_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTOR_KIND_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    name: str
    occur_time: _timestamp_pb2.Timestamp
    actor: str
    actor_kind: AuditActorKind
    action: str
    resource: str
    outcome: str
    request_id: str
    trace_id: str
    details: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., occur_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., actor_kind: _Optional[_Union[AuditActorKind, str]] = ..., action: _Optional[str] = ..., resource: _Optional[str] = ..., outcome: _Optional[str] = ..., request_id: _Optional[str] = ..., trace_id: _Optional[str] = ..., details: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
