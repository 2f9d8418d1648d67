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

class PageSize(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAGE_SIZE_UNSPECIFIED: _ClassVar[PageSize]
    PAGE_SIZE_A4: _ClassVar[PageSize]
    PAGE_SIZE_LETTER: _ClassVar[PageSize]

class Orientation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORIENTATION_UNSPECIFIED: _ClassVar[Orientation]
    ORIENTATION_PORTRAIT: _ClassVar[Orientation]
    ORIENTATION_LANDSCAPE: _ClassVar[Orientation]
PAGE_SIZE_UNSPECIFIED: PageSize
PAGE_SIZE_A4: PageSize
PAGE_SIZE_LETTER: PageSize
ORIENTATION_UNSPECIFIED: Orientation
ORIENTATION_PORTRAIT: Orientation
ORIENTATION_LANDSCAPE: Orientation

class EmailTemplate(_message.Message):
    __slots__ = ("name", "display_name", "subject", "html_body", "text_body", "is_default", "create_time", "placeholders")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    HTML_BODY_FIELD_NUMBER: _ClassVar[int]
    TEXT_BODY_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PLACEHOLDERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    subject: str
    html_body: str
    text_body: str
    is_default: bool
    create_time: _timestamp_pb2.Timestamp
    placeholders: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., subject: _Optional[str] = ..., html_body: _Optional[str] = ..., text_body: _Optional[str] = ..., is_default: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., placeholders: _Optional[_Iterable[str]] = ...) -> None: ...

class SmsTemplate(_message.Message):
    __slots__ = ("name", "display_name", "body", "is_default", "create_time", "placeholders")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PLACEHOLDERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    body: str
    is_default: bool
    create_time: _timestamp_pb2.Timestamp
    placeholders: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., body: _Optional[str] = ..., is_default: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., placeholders: _Optional[_Iterable[str]] = ...) -> None: ...

class CertificateLayout(_message.Message):
    __slots__ = ("page_size", "orientation", "primary_color", "text_color", "background_color", "logo", "logo_mime_type")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ORIENTATION_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_COLOR_FIELD_NUMBER: _ClassVar[int]
    TEXT_COLOR_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_COLOR_FIELD_NUMBER: _ClassVar[int]
    LOGO_FIELD_NUMBER: _ClassVar[int]
    LOGO_MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    page_size: PageSize
    orientation: Orientation
    primary_color: str
    text_color: str
    background_color: str
    logo: bytes
    logo_mime_type: str
    def __init__(self, page_size: _Optional[_Union[PageSize, str]] = ..., orientation: _Optional[_Union[Orientation, str]] = ..., primary_color: _Optional[str] = ..., text_color: _Optional[str] = ..., background_color: _Optional[str] = ..., logo: _Optional[bytes] = ..., logo_mime_type: _Optional[str] = ...) -> None: ...

class CertificateTemplate(_message.Message):
    __slots__ = ("name", "display_name", "title", "body", "layout", "create_time", "placeholders")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PLACEHOLDERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    title: str
    body: str
    layout: CertificateLayout
    create_time: _timestamp_pb2.Timestamp
    placeholders: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., layout: _Optional[_Union[CertificateLayout, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., placeholders: _Optional[_Iterable[str]] = ...) -> None: ...

class SampleCsvColumn(_message.Message):
    __slots__ = ("name", "required", "description", "example")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    required: bool
    description: str
    example: str
    def __init__(self, name: _Optional[str] = ..., required: _Optional[bool] = ..., description: _Optional[str] = ..., example: _Optional[str] = ...) -> None: ...

class SampleCsv(_message.Message):
    __slots__ = ("filename", "content", "columns")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    filename: str
    content: bytes
    columns: _containers.RepeatedCompositeFieldContainer[SampleCsvColumn]
    def __init__(self, filename: _Optional[str] = ..., content: _Optional[bytes] = ..., columns: _Optional[_Iterable[_Union[SampleCsvColumn, _Mapping]]] = ...) -> None: ...
