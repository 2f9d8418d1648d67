import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AttributeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ATTRIBUTE_TYPE_UNSPECIFIED: _ClassVar[AttributeType]
    ATTRIBUTE_TYPE_STRING: _ClassVar[AttributeType]
    ATTRIBUTE_TYPE_INTEGER: _ClassVar[AttributeType]
    ATTRIBUTE_TYPE_NUMBER: _ClassVar[AttributeType]
    ATTRIBUTE_TYPE_BOOLEAN: _ClassVar[AttributeType]
    ATTRIBUTE_TYPE_DATE: _ClassVar[AttributeType]
    ATTRIBUTE_TYPE_EMAIL: _ClassVar[AttributeType]
    ATTRIBUTE_TYPE_PHONE: _ClassVar[AttributeType]
    ATTRIBUTE_TYPE_URL: _ClassVar[AttributeType]
    ATTRIBUTE_TYPE_ENUM: _ClassVar[AttributeType]
ATTRIBUTE_TYPE_UNSPECIFIED: AttributeType
ATTRIBUTE_TYPE_STRING: AttributeType
ATTRIBUTE_TYPE_INTEGER: AttributeType
ATTRIBUTE_TYPE_NUMBER: AttributeType
ATTRIBUTE_TYPE_BOOLEAN: AttributeType
ATTRIBUTE_TYPE_DATE: AttributeType
ATTRIBUTE_TYPE_EMAIL: AttributeType
ATTRIBUTE_TYPE_PHONE: AttributeType
ATTRIBUTE_TYPE_URL: AttributeType
ATTRIBUTE_TYPE_ENUM: AttributeType

class Attribute(_message.Message):
    __slots__ = ("name", "type", "required", "description", "enum_values", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ENUM_VALUES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: AttributeType
    required: bool
    description: str
    enum_values: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[AttributeType, str]] = ..., required: _Optional[bool] = ..., description: _Optional[str] = ..., enum_values: _Optional[_Iterable[str]] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CredentialSchema(_message.Message):
    __slots__ = ("name", "display_name", "version", "attributes", "requires_certificate", "description", "credential_validity", "create_time", "latest_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_VALIDITY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LATEST_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    version: int
    attributes: _containers.RepeatedCompositeFieldContainer[Attribute]
    requires_certificate: bool
    description: str
    credential_validity: _duration_pb2.Duration
    create_time: _timestamp_pb2.Timestamp
    latest_version: int
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., version: _Optional[int] = ..., attributes: _Optional[_Iterable[_Union[Attribute, _Mapping]]] = ..., requires_certificate: _Optional[bool] = ..., description: _Optional[str] = ..., credential_validity: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., latest_version: _Optional[int] = ...) -> None: ...
