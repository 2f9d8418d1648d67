import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TenantProfile(_message.Message):
    __slots__ = ("name", "display_name", "localized_display_names", "logo", "primary_color", "background_color", "support_email", "support_url", "default_locale", "email_sender_name", "reply_to", "sms_sender_id", "retention_days", "reminder_days", "update_time")
    class LocalizedDisplayNamesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    LOCALIZED_DISPLAY_NAMES_FIELD_NUMBER: _ClassVar[int]
    LOGO_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_COLOR_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_COLOR_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_EMAIL_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_URL_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_LOCALE_FIELD_NUMBER: _ClassVar[int]
    EMAIL_SENDER_NAME_FIELD_NUMBER: _ClassVar[int]
    REPLY_TO_FIELD_NUMBER: _ClassVar[int]
    SMS_SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    RETENTION_DAYS_FIELD_NUMBER: _ClassVar[int]
    REMINDER_DAYS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    localized_display_names: _containers.ScalarMap[str, str]
    logo: Logo
    primary_color: str
    background_color: str
    support_email: str
    support_url: str
    default_locale: str
    email_sender_name: str
    reply_to: str
    sms_sender_id: str
    retention_days: int
    reminder_days: _containers.RepeatedScalarFieldContainer[int]
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., localized_display_names: _Optional[_Mapping[str, str]] = ..., logo: _Optional[_Union[Logo, _Mapping]] = ..., primary_color: _Optional[str] = ..., background_color: _Optional[str] = ..., support_email: _Optional[str] = ..., support_url: _Optional[str] = ..., default_locale: _Optional[str] = ..., email_sender_name: _Optional[str] = ..., reply_to: _Optional[str] = ..., sms_sender_id: _Optional[str] = ..., retention_days: _Optional[int] = ..., reminder_days: _Optional[_Iterable[int]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Logo(_message.Message):
    __slots__ = ("content", "media_type", "uri", "sha256")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    media_type: str
    uri: str
    sha256: str
    def __init__(self, content: _Optional[bytes] = ..., media_type: _Optional[str] = ..., uri: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...
