"""TemplateService servicer: requests to domain calls and back, nothing more."""

from __future__ import annotations

from typing import Any

import grpc

from credbatch import names
from credbatch.auth.caller import current_caller
from credbatch.catalog.checks import compile_certificate, compile_email, compile_sms
from credbatch.catalog.model import CertificateTemplate, EmailTemplate, SmsTemplate
from credbatch.gen.templates.v1 import (
    credential_schema_pb2,
    templates_pb2,
    templates_service_pb2,
    templates_service_pb2_grpc,
)
from services.templates import mapping
from services.templates.catalog import TemplateCatalog

Context = grpc.aio.ServicerContext[Any, Any]


class TemplateServicer(templates_service_pb2_grpc.TemplateServiceServicer):
    """Schemas, templates, previews and sample CSVs (see catalog.TemplateCatalog)."""

    def __init__(self, catalog: TemplateCatalog) -> None:
        self._catalog = catalog

    # --- schemas ---------------------------------------------------------------------

    async def CreateCredentialSchema(
        self, request: templates_service_pb2.CreateCredentialSchemaRequest, context: Context
    ) -> credential_schema_pb2.CredentialSchema:
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

    # --- email templates ---------------------------------------------------------------

    async def CreateEmailTemplate(
        self, request: templates_service_pb2.CreateEmailTemplateRequest, context: Context
    ) -> templates_pb2.EmailTemplate:
        template = await self._catalog.create_email_template(
            current_caller(),
            mapping.email_template(request.email_template),
            request.request_id,
            request.validate_against_schema,
        )
        return _email(template)

    async def GetEmailTemplate(
        self, request: templates_service_pb2.GetEmailTemplateRequest, context: Context
    ) -> templates_pb2.EmailTemplate:
        return _email(await self._catalog.get_email_template(current_caller(), request.name))

    async def ListEmailTemplates(
        self, request: templates_service_pb2.ListEmailTemplatesRequest, context: Context
    ) -> templates_service_pb2.ListEmailTemplatesResponse:
        page = await self._catalog.list_email_templates(
            current_caller(), request.page_size, request.page_token
        )
        return templates_service_pb2.ListEmailTemplatesResponse(
            email_templates=[_email(item) for item in page.items],
            next_page_token=page.next_page_token,
        )

    # --- SMS templates -----------------------------------------------------------------

    async def CreateSmsTemplate(
        self, request: templates_service_pb2.CreateSmsTemplateRequest, context: Context
    ) -> templates_pb2.SmsTemplate:
        template = await self._catalog.create_sms_template(
            current_caller(),
            mapping.sms_template(request.sms_template),
            request.request_id,
            request.validate_against_schema,
        )
        return _sms(template)

    async def GetSmsTemplate(
        self, request: templates_service_pb2.GetSmsTemplateRequest, context: Context
    ) -> templates_pb2.SmsTemplate:
        return _sms(await self._catalog.get_sms_template(current_caller(), request.name))

    async def ListSmsTemplates(
        self, request: templates_service_pb2.ListSmsTemplatesRequest, context: Context
    ) -> templates_service_pb2.ListSmsTemplatesResponse:
        page = await self._catalog.list_sms_templates(
            current_caller(), request.page_size, request.page_token
        )
        return templates_service_pb2.ListSmsTemplatesResponse(
            sms_templates=[_sms(item) for item in page.items],
            next_page_token=page.next_page_token,
        )

    # --- certificate templates ---------------------------------------------------------

    async def CreateCertificateTemplate(
        self, request: templates_service_pb2.CreateCertificateTemplateRequest, context: Context
    ) -> templates_pb2.CertificateTemplate:
        template = await self._catalog.create_certificate_template(
            current_caller(),
            mapping.certificate_template(request.certificate_template),
            request.request_id,
            request.validate_against_schema,
        )
        return _certificate(template)

    async def GetCertificateTemplate(
        self, request: templates_service_pb2.GetCertificateTemplateRequest, context: Context
    ) -> templates_pb2.CertificateTemplate:
        template = await self._catalog.get_certificate_template(current_caller(), request.name)
        return _certificate(template)

    async def ListCertificateTemplates(
        self, request: templates_service_pb2.ListCertificateTemplatesRequest, context: Context
    ) -> templates_service_pb2.ListCertificateTemplatesResponse:
        page = await self._catalog.list_certificate_templates(
            current_caller(), request.page_size, request.page_token
        )
        return templates_service_pb2.ListCertificateTemplatesResponse(
            certificate_templates=[_certificate(item) for item in page.items],
            next_page_token=page.next_page_token,
        )

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


# Stored templates passed their checks when created, so compiling them again only lists
# their placeholders for the response.


def _email(template: EmailTemplate) -> templates_pb2.EmailTemplate:
    compiled = compile_email(template)
    placeholders = compiled.subject.placeholders | compiled.html_body.placeholders
    return mapping.email_to_proto(template, placeholders | compiled.text_body.placeholders)


def _sms(template: SmsTemplate) -> templates_pb2.SmsTemplate:
    return mapping.sms_to_proto(template, compile_sms(template).body.placeholders)


def _certificate(template: CertificateTemplate) -> templates_pb2.CertificateTemplate:
    return mapping.certificate_to_proto(template, compile_certificate(template).placeholders)
