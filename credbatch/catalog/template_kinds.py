"""The three kinds of template as credbatch.catalog.templates stores them: row ↔ record."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from credbatch import names
from credbatch.catalog.defaults import EMAIL_DEFAULT, SMS_DEFAULT
from credbatch.catalog.model import CertificateTemplate, EmailTemplate, SmsTemplate
from credbatch.catalog.templates import TemplateKind
from credbatch.templating.certificate import CertificateLayout

_DEFAULT_LAYOUT = CertificateLayout()


def _email(row: Mapping[str, Any]) -> EmailTemplate:
    return EmailTemplate(
        id=row["id"],
        display_name=row["display_name"],
        subject=row["subject"],
        html_body=row["html_body"],
        text_body=row["text_body"],
        is_default=row["is_default"],
        create_time=row["created_at"],
    )


def _email_row(template: EmailTemplate) -> tuple[Any, ...]:
    return template.display_name, template.subject, template.html_body, template.text_body


def _sms(row: Mapping[str, Any]) -> SmsTemplate:
    return SmsTemplate(
        id=row["id"],
        display_name=row["display_name"],
        body=row["body"],
        is_default=row["is_default"],
        create_time=row["created_at"],
    )


def _sms_row(template: SmsTemplate) -> tuple[Any, ...]:
    return template.display_name, template.body


def _certificate(row: Mapping[str, Any]) -> CertificateTemplate:
    layout = dict(row["layout"])
    return CertificateTemplate(
        id=row["id"],
        display_name=row["display_name"],
        title=row["title"],
        body=row["body"],
        layout=CertificateLayout(
            page_size=layout.get("page_size", "A4"),
            orientation=layout.get("orientation", "LANDSCAPE"),
            primary_color=layout.get("primary_color", _DEFAULT_LAYOUT.primary_color),
            text_color=layout.get("text_color", _DEFAULT_LAYOUT.text_color),
            background_color=layout.get("background_color", _DEFAULT_LAYOUT.background_color),
            logo=row["logo"],
            logo_mime_type=row["logo_mime_type"],
        ),
        create_time=row["created_at"],
    )


def _certificate_row(template: CertificateTemplate) -> tuple[Any, ...]:
    layout = template.layout
    return (
        template.display_name,
        template.title,
        template.body,
        {
            "page_size": layout.page_size,
            "orientation": layout.orientation,
            "primary_color": layout.primary_color,
            "text_color": layout.text_color,
            "background_color": layout.background_color,
        },
        layout.logo,
        # A MIME type without a logo would describe nothing.
        layout.logo_mime_type if layout.logo is not None else None,
    )


EMAIL: TemplateKind[EmailTemplate] = TemplateKind(
    collection=names.EMAIL_TEMPLATES,
    table="email_templates",
    columns=("display_name", "subject", "html_body", "text_body"),
    request_kind="email_template",
    label="email",
    from_row=_email,
    to_row=_email_row,
    default=EMAIL_DEFAULT,
)
SMS: TemplateKind[SmsTemplate] = TemplateKind(
    collection=names.SMS_TEMPLATES,
    table="sms_templates",
    columns=("display_name", "body"),
    request_kind="sms_template",
    label="SMS",
    from_row=_sms,
    to_row=_sms_row,
    default=SMS_DEFAULT,
)
CERTIFICATE: TemplateKind[CertificateTemplate] = TemplateKind(
    collection=names.CERTIFICATE_TEMPLATES,
    table="certificate_templates",
    columns=("display_name", "title", "body", "layout", "logo", "logo_mime_type"),
    request_kind="certificate_template",
    label="certificate",
    from_row=_certificate,
    to_row=_certificate_row,
)
