from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class Medium(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEDIUM_UNSPECIFIED: _ClassVar[Medium]
    MEDIUM_EMAIL: _ClassVar[Medium]
    MEDIUM_SMS: _ClassVar[Medium]
MEDIUM_UNSPECIFIED: Medium
MEDIUM_EMAIL: Medium
MEDIUM_SMS: Medium
