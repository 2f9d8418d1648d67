"""Invitation templates, compiled once per batch (credbatch.templating) and rendered per record
in the worker's render processes (credbatch.templating.runner).

Placeholders are the schema's attributes plus the documented system values
(credbatch.templating.placeholders), the same ones the template service checks templates
against, all as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from credbatch.catalog.checks import SUBJECT_LIMITS
from credbatch.catalog.model import EmailTemplate as StoredEmailTemplate
from credbatch.schema.model import SchemaVersion
from credbatch.templating.placeholders import (
    CLAIM_URL,
    CRED_URL,
    HOLDER_EMAIL,
    HOLDER_PHONE,
    ISSUE_DATE,
    ISSUER_LOGO_URL,
    ISSUER_NAME,
    ISSUER_SUPPORT_EMAIL,
    ISSUER_SUPPORT_URL,
    template_context,
)
from credbatch.templating.runner import Rendered, TextJob
from credbatch.templating.sandbox import CompiledTemplate
from credbatch.tenants.display import IssuerDisplay


@dataclass(frozen=True)
class RenderedEmail:
    subject: str  # folded to one line
    html: str
    text: str

    @classmethod
    def of(cls, texts: Rendered) -> RenderedEmail:
        """From the texts of EmailTemplate.job."""
        subject, html, text = texts
        assert isinstance(subject, str) and isinstance(html, str) and isinstance(text, str)
        return cls(" ".join(subject.split()), html, text)


@dataclass(frozen=True)
class EmailTemplate:
    subject: CompiledTemplate
    html: CompiledTemplate
    text: CompiledTemplate

    @classmethod
    def compile(cls, stored: StoredEmailTemplate) -> EmailTemplate:
        # The limits the template was checked with at creation: the same hold at each render.
        return cls(
            CompiledTemplate(stored.subject, limits=SUBJECT_LIMITS),
            CompiledTemplate(stored.html_body, html=True),
            CompiledTemplate(stored.text_body),
        )

    def job(self, values: dict[str, Any]) -> TextJob:
        """The render job of one holder's email (RenderedEmail.of reads its result)."""
        return TextJob((self.subject, self.html, self.text), values)


def template_values(
    schema: SchemaVersion,
    attributes: dict[str, Any],
    *,
    email: str | None,
    phone: str | None,
    claim_url: str,
    cred_url: str | None,
    issuer_name: str,
    issue_date: date,
    issuer: IssuerDisplay | None = None,
) -> dict[str, str]:
    """The placeholders of one record's templates."""
    system = {
        HOLDER_EMAIL: email or "",
        HOLDER_PHONE: phone or "",
        CLAIM_URL: claim_url,
        ISSUER_NAME: issuer_name,
        ISSUE_DATE: issue_date.isoformat(),
    }
    if issuer is not None:
        system[ISSUER_LOGO_URL] = issuer.logo_uri
        system[ISSUER_SUPPORT_EMAIL] = issuer.support_email
        system[ISSUER_SUPPORT_URL] = issuer.support_url
    if cred_url is not None:
        system[CRED_URL] = cred_url
    return template_context(schema, attributes, system)
