from credbatch.gen.tenants.v1 import audit_event_pb2 as _audit_event_pb2
from credbatch.gen.tenants.v1 import tenant_pb2 as _tenant_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CredentialDisposition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CREDENTIAL_DISPOSITION_UNSPECIFIED: _ClassVar[CredentialDisposition]
    CREDENTIAL_DISPOSITION_REVOKE: _ClassVar[CredentialDisposition]
    CREDENTIAL_DISPOSITION_KEEP_VALID: _ClassVar[CredentialDisposition]
CREDENTIAL_DISPOSITION_UNSPECIFIED: CredentialDisposition
CREDENTIAL_DISPOSITION_REVOKE: CredentialDisposition
CREDENTIAL_DISPOSITION_KEEP_VALID: CredentialDisposition

class GetTenantProfileRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UpdateTenantProfileRequest(_message.Message):
    __slots__ = ("tenant_profile", "update_mask")
    TENANT_PROFILE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    tenant_profile: _tenant_pb2.TenantProfile
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, tenant_profile: _Optional[_Union[_tenant_pb2.TenantProfile, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("audit_events", "next_page_token")
    AUDIT_EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    audit_events: _containers.RepeatedCompositeFieldContainer[_audit_event_pb2.AuditEvent]
    next_page_token: str
    def __init__(self, audit_events: _Optional[_Iterable[_Union[_audit_event_pb2.AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class EraseHolderRequest(_message.Message):
    __slots__ = ("email", "phone", "credentials", "reason")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    email: str
    phone: str
    credentials: CredentialDisposition
    reason: str
    def __init__(self, email: _Optional[str] = ..., phone: _Optional[str] = ..., credentials: _Optional[_Union[CredentialDisposition, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class EraseHolderResponse(_message.Message):
    __slots__ = ("records_erased", "credentials_revoked", "records_cancelled", "batches")
    RECORDS_ERASED_FIELD_NUMBER: _ClassVar[int]
    CREDENTIALS_REVOKED_FIELD_NUMBER: _ClassVar[int]
    RECORDS_CANCELLED_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    records_erased: int
    credentials_revoked: int
    records_cancelled: int
    batches: int
    def __init__(self, records_erased: _Optional[int] = ..., credentials_revoked: _Optional[int] = ..., records_cancelled: _Optional[int] = ..., batches: _Optional[int] = ...) -> None: ...
