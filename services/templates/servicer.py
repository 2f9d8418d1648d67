"""TemplateService servicer: requests to domain calls and back, nothing more."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import grpc

from credbatch import names
from credbatch.auth.caller import current_caller
from credbatch.catalog.templates import Listed
from credbatch.db import idempotency
from credbatch.gen.templates.v1 import (
    credential_schema_pb2,
    templates_pb2,
    templates_service_pb2,
    templates_service_pb2_grpc,
)
from services.templates import kinds, mapping
from services.templates.catalog import TemplateCatalog
from services.templates.kinds import TemplateRules

Context = grpc.aio.ServicerContext[Any, Any]
R = TypeVar("R", bound=Listed)
M = TypeVar("M")


class TemplateServicer(templates_service_pb2_grpc.TemplateServiceServicer):
    """Schemas, templates, previews and sample CSVs (see catalog.TemplateCatalog)."""

    def __init__(self, catalog: TemplateCatalog) -> None:
        self._catalog = catalog

    # --- schemas ---------------------------------------------------------------------

    async def CreateCredentialSchema(
        self, request: templates_service_pb2.CreateCredentialSchemaRequest, context: Context
    ) -> credential_schema_pb2.CredentialSchema:
        idempotency.use_request(request)
        draft, violations = mapping.schema_draft(request.schema)
        stored = await self._catalog.create_schema(
            current_caller(), draft, violations, request.request_id
        )
        return mapping.schema_to_proto(stored)

    async def CreateCredentialSchemaVersion(
        self,
        request: templates_service_pb2.CreateCredentialSchemaVersionRequest,
        context: Context,
    ) -> credential_schema_pb2.CredentialSchema:
        idempotency.use_request(request)
        schema_id, _ = names.parse_schema_name(request.name, "name", versioned=False)
        draft, violations = mapping.schema_draft(request.schema)
        stored = await self._catalog.create_schema_version(
            current_caller(), schema_id, draft, violations, request.request_id
        )
        return mapping.schema_to_proto(stored)

    async def GetCredentialSchema(
        self, request: templates_service_pb2.GetCredentialSchemaRequest, context: Context
    ) -> credential_schema_pb2.CredentialSchema:
        ref = names.parse_schema_name(request.name, "name")
        return mapping.schema_to_proto(await self._catalog.get_schema(current_caller(), ref))

    async def ListCredentialSchemas(
        self, request: templates_service_pb2.ListCredentialSchemasRequest, context: Context
    ) -> templates_service_pb2.ListCredentialSchemasResponse:
        page = await self._catalog.list_schemas(
            current_caller(), request.page_size, request.page_token
        )
        return templates_service_pb2.ListCredentialSchemasResponse(
            schemas=[mapping.schema_to_proto(item) for item in page.items],
            next_page_token=page.next_page_token,
        )

    # --- templates: one implementation, a descriptor per kind (_EMAIL, _SMS, _CERTIFICATE) ---

    async def CreateEmailTemplate(
        self, request: templates_service_pb2.CreateEmailTemplateRequest, context: Context
    ) -> templates_pb2.EmailTemplate:
        idempotency.use_request(request)
        return await self._create(_EMAIL, request.email_template, request)

    async def CreateSmsTemplate(
        self, request: templates_service_pb2.CreateSmsTemplateRequest, context: Context
    ) -> templates_pb2.SmsTemplate:
        idempotency.use_request(request)
        return await self._create(_SMS, request.sms_template, request)

    async def CreateCertificateTemplate(
        self, request: templates_service_pb2.CreateCertificateTemplateRequest, context: Context
    ) -> templates_pb2.CertificateTemplate:
        idempotency.use_request(request)
        return await self._create(_CERTIFICATE, request.certificate_template, request)

    async def GetEmailTemplate(
        self, request: templates_service_pb2.GetEmailTemplateRequest, context: Context
    ) -> templates_pb2.EmailTemplate:
        return await self._get(_EMAIL, request.name)

    async def GetSmsTemplate(
        self, request: templates_service_pb2.GetSmsTemplateRequest, context: Context
    ) -> templates_pb2.SmsTemplate:
        return await self._get(_SMS, request.name)

    async def GetCertificateTemplate(
        self, request: templates_service_pb2.GetCertificateTemplateRequest, context: Context
    ) -> templates_pb2.CertificateTemplate:
        return await self._get(_CERTIFICATE, request.name)

    async def ListEmailTemplates(
        self, request: templates_service_pb2.ListEmailTemplatesRequest, context: Context
    ) -> templates_service_pb2.ListEmailTemplatesResponse:
        items, token = await self._list(_EMAIL, request)
        return templates_service_pb2.ListEmailTemplatesResponse(
            email_templates=items, next_page_token=token
        )

    async def ListSmsTemplates(
        self, request: templates_service_pb2.ListSmsTemplatesRequest, context: Context
    ) -> templates_service_pb2.ListSmsTemplatesResponse:
        items, token = await self._list(_SMS, request)
        return templates_service_pb2.ListSmsTemplatesResponse(
            sms_templates=items, next_page_token=token
        )

    async def ListCertificateTemplates(
        self, request: templates_service_pb2.ListCertificateTemplatesRequest, context: Context
    ) -> templates_service_pb2.ListCertificateTemplatesResponse:
        items, token = await self._list(_CERTIFICATE, request)
        return templates_service_pb2.ListCertificateTemplatesResponse(
            certificate_templates=items, next_page_token=token
        )

    async def _create(self, kind: _Kind[R, M], message: M, request: _CreateRequest) -> M:
        template = await self._catalog.create_template(
            current_caller(),
            kind.rules,
            kind.from_proto(message),
            request.request_id,
            request.validate_against_schema,
        )
        return kind.message(template)

    async def _get(self, kind: _Kind[R, M], name: str) -> M:
        return kind.message(await self._catalog.get_template(current_caller(), kind.rules, name))

    async def _list(self, kind: _Kind[R, M], request: _ListRequest) -> tuple[list[M], str]:
        page = await self._catalog.list_templates(
            current_caller(), kind.rules, request.page_size, request.page_token
        )
        return [kind.message(item) for item in page.items], page.next_page_token

    # --- previews and sample CSV ---------------------------------------------------------

    async def RenderTemplatePreview(
        self, request: templates_service_pb2.RenderTemplatePreviewRequest, context: Context
    ) -> templates_service_pb2.RenderTemplatePreviewResponse:
        preview = await self._catalog.preview(
            current_caller(), request.template, request.schema, dict(request.sample_values)
        )
        return mapping.preview_to_proto(preview)

    async def GetSampleCsv(
        self, request: templates_service_pb2.GetSampleCsvRequest, context: Context
    ) -> templates_pb2.SampleCsv:
        sample = await self._catalog.sample_csv(
            current_caller(), request.schema, mapping.mediums(request.mediums)
        )
        return mapping.sample_csv_to_proto(sample)


class _CreateRequest(Protocol):
    """What every Create*Template request carries besides the template."""

    @property
    def request_id(self) -> str: ...

    @property
    def validate_against_schema(self) -> str: ...


class _ListRequest(Protocol):
    @property
    def page_size(self) -> int: ...

    @property
    def page_token(self) -> str: ...


@dataclass(frozen=True)
class _Kind(Generic[R, M]):
    """One kind of template on the wire: its rules and its message conversions."""

    rules: TemplateRules[R, Any]
    from_proto: Callable[[M], R]
    to_proto: Callable[[R, Iterable[str]], M]

    def message(self, template: R) -> M:
        return self.to_proto(template, self.rules.placeholders(template))


_EMAIL = _Kind(kinds.EMAIL, mapping.email_template, mapping.email_to_proto)
_SMS = _Kind(kinds.SMS, mapping.sms_template, mapping.sms_to_proto)
_CERTIFICATE = _Kind(kinds.CERTIFICATE, mapping.certificate_template, mapping.certificate_to_proto)
