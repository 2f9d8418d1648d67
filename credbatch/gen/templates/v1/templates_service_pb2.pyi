from credbatch.gen.common.v1 import medium_pb2 as _medium_pb2
from credbatch.gen.templates.v1 import credential_schema_pb2 as _credential_schema_pb2
from credbatch.gen.templates.v1 import templates_pb2 as _templates_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import resource_pb2 as _resource_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateCredentialSchemaRequest(_message.Message):
    __slots__ = ("schema", "request_id")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    schema: _credential_schema_pb2.CredentialSchema
    request_id: str
    def __init__(self, schema: _Optional[_Union[_credential_schema_pb2.CredentialSchema, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateCredentialSchemaVersionRequest(_message.Message):
    __slots__ = ("name", "schema", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    schema: _credential_schema_pb2.CredentialSchema
    request_id: str
    def __init__(self, name: _Optional[str] = ..., schema: _Optional[_Union[_credential_schema_pb2.CredentialSchema, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class GetCredentialSchemaRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListCredentialSchemasRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCredentialSchemasResponse(_message.Message):
    __slots__ = ("schemas", "next_page_token")
    SCHEMAS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    schemas: _containers.RepeatedCompositeFieldContainer[_credential_schema_pb2.CredentialSchema]
    next_page_token: str
    def __init__(self, schemas: _Optional[_Iterable[_Union[_credential_schema_pb2.CredentialSchema, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateEmailTemplateRequest(_message.Message):
    __slots__ = ("email_template", "request_id", "validate_against_schema")
    EMAIL_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_AGAINST_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    email_template: _templates_pb2.EmailTemplate
    request_id: str
    validate_against_schema: str
    def __init__(self, email_template: _Optional[_Union[_templates_pb2.EmailTemplate, _Mapping]] = ..., request_id: _Optional[str] = ..., validate_against_schema: _Optional[str] = ...) -> None: ...

class GetEmailTemplateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListEmailTemplatesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListEmailTemplatesResponse(_message.Message):
    __slots__ = ("email_templates", "next_page_token")
    EMAIL_TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    email_templates: _containers.RepeatedCompositeFieldContainer[_templates_pb2.EmailTemplate]
    next_page_token: str
    def __init__(self, email_templates: _Optional[_Iterable[_Union[_templates_pb2.EmailTemplate, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateSmsTemplateRequest(_message.Message):
    __slots__ = ("sms_template", "request_id", "validate_against_schema")
    SMS_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_AGAINST_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    sms_template: _templates_pb2.SmsTemplate
    request_id: str
    validate_against_schema: str
    def __init__(self, sms_template: _Optional[_Union[_templates_pb2.SmsTemplate, _Mapping]] = ..., request_id: _Optional[str] = ..., validate_against_schema: _Optional[str] = ...) -> None: ...

class GetSmsTemplateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListSmsTemplatesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSmsTemplatesResponse(_message.Message):
    __slots__ = ("sms_templates", "next_page_token")
    SMS_TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sms_templates: _containers.RepeatedCompositeFieldContainer[_templates_pb2.SmsTemplate]
    next_page_token: str
    def __init__(self, sms_templates: _Optional[_Iterable[_Union[_templates_pb2.SmsTemplate, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateCertificateTemplateRequest(_message.Message):
    __slots__ = ("certificate_template", "request_id", "validate_against_schema")
    CERTIFICATE_TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_AGAINST_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    certificate_template: _templates_pb2.CertificateTemplate
    request_id: str
    validate_against_schema: str
    def __init__(self, certificate_template: _Optional[_Union[_templates_pb2.CertificateTemplate, _Mapping]] = ..., request_id: _Optional[str] = ..., validate_against_schema: _Optional[str] = ...) -> None: ...

class GetCertificateTemplateRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListCertificateTemplatesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCertificateTemplatesResponse(_message.Message):
    __slots__ = ("certificate_templates", "next_page_token")
    CERTIFICATE_TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    certificate_templates: _containers.RepeatedCompositeFieldContainer[_templates_pb2.CertificateTemplate]
    next_page_token: str
    def __init__(self, certificate_templates: _Optional[_Iterable[_Union[_templates_pb2.CertificateTemplate, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RenderTemplatePreviewRequest(_message.Message):
    __slots__ = ("template", "schema", "sample_values")
    class SampleValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_VALUES_FIELD_NUMBER: _ClassVar[int]
    template: str
    schema: str
    sample_values: _containers.ScalarMap[str, str]
    def __init__(self, template: _Optional[str] = ..., schema: _Optional[str] = ..., sample_values: _Optional[_Mapping[str, str]] = ...) -> None: ...

class EmailPreview(_message.Message):
    __slots__ = ("subject", "html_body", "text_body")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    HTML_BODY_FIELD_NUMBER: _ClassVar[int]
    TEXT_BODY_FIELD_NUMBER: _ClassVar[int]
    subject: str
    html_body: str
    text_body: str
    def __init__(self, subject: _Optional[str] = ..., html_body: _Optional[str] = ..., text_body: _Optional[str] = ...) -> None: ...

class SmsPreview(_message.Message):
    __slots__ = ("body", "segment_count", "encoding", "length")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    body: str
    segment_count: int
    encoding: str
    length: int
    def __init__(self, body: _Optional[str] = ..., segment_count: _Optional[int] = ..., encoding: _Optional[str] = ..., length: _Optional[int] = ...) -> None: ...

class CertificatePreview(_message.Message):
    __slots__ = ("pdf", "cred_url")
    PDF_FIELD_NUMBER: _ClassVar[int]
    CRED_URL_FIELD_NUMBER: _ClassVar[int]
    pdf: bytes
    cred_url: str
    def __init__(self, pdf: _Optional[bytes] = ..., cred_url: _Optional[str] = ...) -> None: ...

class RenderTemplatePreviewResponse(_message.Message):
    __slots__ = ("email", "sms", "certificate")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    SMS_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    email: EmailPreview
    sms: SmsPreview
    certificate: CertificatePreview
    def __init__(self, email: _Optional[_Union[EmailPreview, _Mapping]] = ..., sms: _Optional[_Union[SmsPreview, _Mapping]] = ..., certificate: _Optional[_Union[CertificatePreview, _Mapping]] = ...) -> None: ...

class GetSampleCsvRequest(_message.Message):
    __slots__ = ("schema", "mediums")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    MEDIUMS_FIELD_NUMBER: _ClassVar[int]
    schema: str
    mediums: _containers.RepeatedScalarFieldContainer[_medium_pb2.Medium]
    def __init__(self, schema: _Optional[str] = ..., mediums: _Optional[_Iterable[_Union[_medium_pb2.Medium, str]]] = ...) -> None: ...
