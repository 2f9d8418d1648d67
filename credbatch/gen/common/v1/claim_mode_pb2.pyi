from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class ClaimMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLAIM_MODE_UNSPECIFIED: _ClassVar[ClaimMode]
    CLAIM_MODE_OID4VCI: _ClassVar[ClaimMode]
    CLAIM_MODE_DOWNLOAD: _ClassVar[ClaimMode]
CLAIM_MODE_UNSPECIFIED: ClaimMode
CLAIM_MODE_OID4VCI: ClaimMode
CLAIM_MODE_DOWNLOAD: ClaimMode
