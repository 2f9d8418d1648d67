"""Proto <-> domain conversion for the TemplateService: the only module here using *_pb2."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from google.protobuf import duration_pb2, timestamp_pb2

from credbatch.catalog.model import (
    CertificateTemplate,
    EmailTemplate,
    SchemaDraft,
    SmsTemplate,
    StoredSchema,
)
from credbatch.errors import FieldViolation, InvalidArgument
from credbatch.gen.common.v1 import medium_pb2
from credbatch.gen.templates.v1 import (
    credential_schema_pb2,
    templates_pb2,
    templates_service_pb2,
)
from credbatch.locales import normalise_locale
from credbatch.schema.model import Attribute, AttributeType, Medium
from credbatch.templating.certificate import CertificateLayout
from services.templates.previews import CertificatePreview, EmailPreview, Preview, SmsPreview
from services.templates.sample_csv import SampleCsv

_TYPE_PREFIX = "ATTRIBUTE_TYPE_"
# Templates in create requests have no id yet: the repository assigns it.
_UNASSIGNED = uuid.UUID(int=0)
_DEFAULT_LAYOUT = CertificateLayout()


def _timestamp(value: object) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    if value is not None:
        stamp.FromDatetime(value)  # type: ignore[arg-type]
    return stamp


# --- schemas -----------------------------------------------------------------------------


def schema_draft(
    schema: credential_schema_pb2.CredentialSchema, prefix: str = "schema"
) -> tuple[SchemaDraft, list[FieldViolation]]:
    """The draft in a request, with what cannot even be represented (unspecified types)."""
    violations: list[FieldViolation] = []
    attributes = []
    for index, attribute in enumerate(schema.attributes):
        if attribute.type == credential_schema_pb2.ATTRIBUTE_TYPE_UNSPECIFIED:
            violations.append(
                FieldViolation(
                    f"{prefix}.attributes[{index}].type",
                    "type is required: one of " + ", ".join(kind.value for kind in AttributeType),
                    "REQUIRED",
                )
            )
            kind = AttributeType.STRING
        else:
            name = credential_schema_pb2.AttributeType.Name(attribute.type)
            kind = AttributeType(name.removeprefix(_TYPE_PREFIX))
        attributes.append(
            Attribute(
                name=attribute.name,
                type=kind,
                required=attribute.required,
                description=attribute.description,
                enum_values=tuple(attribute.enum_values),
                labels=tuple(
                    (normalise_locale(tag) or tag, label)
                    for tag, label in sorted(attribute.labels.items())
                ),
            )
        )
    validity: int | None = None
    if schema.HasField("credential_validity"):
        duration = schema.credential_validity
        validity = duration.seconds
        if duration.nanos or duration.seconds <= 0:
            violations.append(
                FieldViolation(
                    f"{prefix}.credential_validity",
                    "credential_validity is a positive whole number of seconds",
                    "INVALID_VALIDITY",
                )
            )
    draft = SchemaDraft(
        display_name=schema.display_name,
        attributes=tuple(attributes),
        requires_certificate=schema.requires_certificate,
        validity_seconds=validity if validity and validity > 0 else None,
        description=schema.description,
    )
    return draft, violations


def schema_to_proto(stored: StoredSchema) -> credential_schema_pb2.CredentialSchema:
    schema = stored.schema
    message = credential_schema_pb2.CredentialSchema(
        name=schema.name,
        display_name=schema.display_name,
        version=schema.version,
        requires_certificate=schema.requires_certificate,
        description=schema.description,
        create_time=_timestamp(stored.create_time),
        latest_version=stored.latest_version,
        attributes=[
            credential_schema_pb2.Attribute(
                name=a.name,
                type=_TYPE_PREFIX + a.type.value,
                required=a.required,
                description=a.description,
                enum_values=a.enum_values,
                labels=dict(a.labels),
            )
            for a in schema.attributes
        ],
    )
    if schema.validity_seconds is not None:
        message.credential_validity.CopyFrom(duration_pb2.Duration(seconds=schema.validity_seconds))
    return message


# --- templates ---------------------------------------------------------------------------


def email_template(message: templates_pb2.EmailTemplate) -> EmailTemplate:
    return EmailTemplate(
        id=_UNASSIGNED,
        display_name=message.display_name,
        subject=message.subject,
        html_body=message.html_body,
        text_body=message.text_body,
    )


def email_to_proto(
    template: EmailTemplate, placeholders: Iterable[str]
) -> templates_pb2.EmailTemplate:
    return templates_pb2.EmailTemplate(
        name=template.name,
        display_name=template.display_name,
        subject=template.subject,
        html_body=template.html_body,
        text_body=template.text_body,
        is_default=template.is_default,
        create_time=_timestamp(template.create_time),
        placeholders=sorted(placeholders),
    )


def sms_template(message: templates_pb2.SmsTemplate) -> SmsTemplate:
    return SmsTemplate(id=_UNASSIGNED, display_name=message.display_name, body=message.body)


def sms_to_proto(template: SmsTemplate, placeholders: Iterable[str]) -> templates_pb2.SmsTemplate:
    return templates_pb2.SmsTemplate(
        name=template.name,
        display_name=template.display_name,
        body=template.body,
        is_default=template.is_default,
        create_time=_timestamp(template.create_time),
        placeholders=sorted(placeholders),
    )


_PAGE_SIZES = {
    templates_pb2.PAGE_SIZE_UNSPECIFIED: "A4",
    templates_pb2.PAGE_SIZE_A4: "A4",
    templates_pb2.PAGE_SIZE_LETTER: "LETTER",
}
_PAGE_SIZES_OUT = {"A4": templates_pb2.PAGE_SIZE_A4, "LETTER": templates_pb2.PAGE_SIZE_LETTER}
_ORIENTATIONS = {
    templates_pb2.ORIENTATION_UNSPECIFIED: "LANDSCAPE",
    templates_pb2.ORIENTATION_LANDSCAPE: "LANDSCAPE",
    templates_pb2.ORIENTATION_PORTRAIT: "PORTRAIT",
}
_ORIENTATIONS_OUT = {
    "LANDSCAPE": templates_pb2.ORIENTATION_LANDSCAPE,
    "PORTRAIT": templates_pb2.ORIENTATION_PORTRAIT,
}


def certificate_template(message: templates_pb2.CertificateTemplate) -> CertificateTemplate:
    layout = message.layout
    return CertificateTemplate(
        id=_UNASSIGNED,
        display_name=message.display_name,
        title=message.title,
        body=message.body,
        layout=CertificateLayout(
            # An unknown enum number stays visible to the layout check as an invalid name.
            page_size=_PAGE_SIZES.get(layout.page_size, str(layout.page_size)),
            orientation=_ORIENTATIONS.get(layout.orientation, str(layout.orientation)),
            primary_color=layout.primary_color or _DEFAULT_LAYOUT.primary_color,
            text_color=layout.text_color or _DEFAULT_LAYOUT.text_color,
            background_color=layout.background_color or _DEFAULT_LAYOUT.background_color,
            logo=layout.logo or None,
            logo_mime_type=layout.logo_mime_type or None,
        ),
    )


def certificate_to_proto(
    template: CertificateTemplate, placeholders: Iterable[str]
) -> templates_pb2.CertificateTemplate:
    layout = template.layout
    return templates_pb2.CertificateTemplate(
        name=template.name,
        display_name=template.display_name,
        title=template.title,
        body=template.body,
        layout=templates_pb2.CertificateLayout(
            page_size=_PAGE_SIZES_OUT.get(layout.page_size, templates_pb2.PAGE_SIZE_A4),
            orientation=_ORIENTATIONS_OUT.get(
                layout.orientation, templates_pb2.ORIENTATION_LANDSCAPE
            ),
            primary_color=layout.primary_color,
            text_color=layout.text_color,
            background_color=layout.background_color,
            logo=layout.logo or b"",
            logo_mime_type=layout.logo_mime_type or "",
        ),
        create_time=_timestamp(template.create_time),
        placeholders=sorted(placeholders),
    )


# --- mediums, previews, sample CSV -------------------------------------------------------


def mediums(values: Iterable[int], field: str = "mediums") -> list[Medium]:
    result: list[Medium] = []
    for index, value in enumerate(values):
        if value == medium_pb2.MEDIUM_EMAIL:
            medium = Medium.EMAIL
        elif value == medium_pb2.MEDIUM_SMS:
            medium = Medium.SMS
        else:
            raise InvalidArgument(
                "unknown medium",
                violations=[
                    FieldViolation(
                        f"{field}[{index}]", "MEDIUM_EMAIL or MEDIUM_SMS", "INVALID_MEDIUM"
                    )
                ],
            )
        if medium not in result:
            result.append(medium)
    return result


def preview_to_proto(preview: Preview) -> templates_service_pb2.RenderTemplatePreviewResponse:
    response = templates_service_pb2.RenderTemplatePreviewResponse
    if isinstance(preview, EmailPreview):
        return response(
            email=templates_service_pb2.EmailPreview(
                subject=preview.subject,
                html_body=preview.html_body,
                text_body=preview.text_body,
            )
        )
    if isinstance(preview, SmsPreview):
        return response(
            sms=templates_service_pb2.SmsPreview(
                body=preview.body,
                segment_count=preview.segments,
                encoding=preview.encoding,
                length=preview.length,
            )
        )
    assert isinstance(preview, CertificatePreview)
    return response(
        certificate=templates_service_pb2.CertificatePreview(
            pdf=preview.pdf, cred_url=preview.cred_url
        )
    )


def sample_csv_to_proto(sample: SampleCsv) -> templates_pb2.SampleCsv:
    return templates_pb2.SampleCsv(
        filename=sample.filename,
        content=sample.content,
        columns=[
            templates_pb2.SampleCsvColumn(
                name=c.name, required=c.required, description=c.description, example=c.example
            )
            for c in sample.columns
        ],
    )
