import datetime

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

class EventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_TYPE_UNSPECIFIED: _ClassVar[EventType]
    EVENT_TYPE_BATCH_COMPLETED: _ClassVar[EventType]
    EVENT_TYPE_BATCH_COMPLETED_WITH_ERRORS: _ClassVar[EventType]
    EVENT_TYPE_BATCH_CANCELLED: _ClassVar[EventType]
    EVENT_TYPE_BATCH_FAILED: _ClassVar[EventType]
    EVENT_TYPE_RECORD_FAILED: _ClassVar[EventType]
    EVENT_TYPE_RECORD_CLAIMED: _ClassVar[EventType]
    EVENT_TYPE_RECORD_REVOKED: _ClassVar[EventType]
    EVENT_TYPE_RECORD_BOUNCED: _ClassVar[EventType]
    EVENT_TYPE_RECORD_DELIVERED: _ClassVar[EventType]
    EVENT_TYPE_RECORD_EXPIRED: _ClassVar[EventType]
    EVENT_TYPE_RECORD_CONTACT_UPDATED: _ClassVar[EventType]

class DeliveryOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_OUTCOME_UNSPECIFIED: _ClassVar[DeliveryOutcome]
    DELIVERY_OUTCOME_PENDING: _ClassVar[DeliveryOutcome]
    DELIVERY_OUTCOME_SUCCEEDED: _ClassVar[DeliveryOutcome]
    DELIVERY_OUTCOME_FAILED: _ClassVar[DeliveryOutcome]
EVENT_TYPE_UNSPECIFIED: EventType
EVENT_TYPE_BATCH_COMPLETED: EventType
EVENT_TYPE_BATCH_COMPLETED_WITH_ERRORS: EventType
EVENT_TYPE_BATCH_CANCELLED: EventType
EVENT_TYPE_BATCH_FAILED: EventType
EVENT_TYPE_RECORD_FAILED: EventType
EVENT_TYPE_RECORD_CLAIMED: EventType
EVENT_TYPE_RECORD_REVOKED: EventType
EVENT_TYPE_RECORD_BOUNCED: EventType
EVENT_TYPE_RECORD_DELIVERED: EventType
EVENT_TYPE_RECORD_EXPIRED: EventType
EVENT_TYPE_RECORD_CONTACT_UPDATED: EventType
DELIVERY_OUTCOME_UNSPECIFIED: DeliveryOutcome
DELIVERY_OUTCOME_PENDING: DeliveryOutcome
DELIVERY_OUTCOME_SUCCEEDED: DeliveryOutcome
DELIVERY_OUTCOME_FAILED: DeliveryOutcome

class WebhookEndpoint(_message.Message):
    __slots__ = ("name", "url", "event_types", "description", "disabled", "disabled_reason", "secret", "create_time", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    DISABLED_REASON_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    url: str
    event_types: _containers.RepeatedScalarFieldContainer[EventType]
    description: str
    disabled: bool
    disabled_reason: str
    secret: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., url: _Optional[str] = ..., event_types: _Optional[_Iterable[_Union[EventType, str]]] = ..., description: _Optional[str] = ..., disabled: _Optional[bool] = ..., disabled_reason: _Optional[str] = ..., secret: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WebhookDelivery(_message.Message):
    __slots__ = ("name", "event_id", "event_type", "outcome", "attempts", "last_status_code", "last_error", "next_attempt_time", "create_time", "complete_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    LAST_STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    event_id: str
    event_type: EventType
    outcome: DeliveryOutcome
    attempts: int
    last_status_code: int
    last_error: str
    next_attempt_time: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    complete_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., event_id: _Optional[str] = ..., event_type: _Optional[_Union[EventType, str]] = ..., outcome: _Optional[_Union[DeliveryOutcome, str]] = ..., attempts: _Optional[int] = ..., last_status_code: _Optional[int] = ..., last_error: _Optional[str] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., complete_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
