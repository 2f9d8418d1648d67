"""Placeholders of templates: the schema's attributes plus documented system values."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from credbatch.errors import FieldViolation
from credbatch.schema.columns import expected_columns
from credbatch.schema.model import Medium, SchemaVersion
from credbatch.templating.sandbox import CompiledTemplate

HOLDER_EMAIL = "holder_email"
HOLDER_PHONE = "holder_phone"
CLAIM_URL = "claim_url"
CRED_URL = "Cred_URL"
ISSUER_NAME = "issuer_name"
ISSUE_DATE = "issue_date"
OFFER_URL = "offer_url"
TX_CODE = "tx_code"
ISSUER_LOGO_URL = "issuer_logo_url"
ISSUER_SUPPORT_EMAIL = "issuer_support_email"
ISSUER_SUPPORT_URL = "issuer_support_url"

# Filled by the system for every record; documented in templates.proto.
SYSTEM_PLACEHOLDERS: dict[str, str] = {
    HOLDER_EMAIL: "the holder's email address (empty without the EMAIL medium)",
    HOLDER_PHONE: "the holder's phone number in E.164 (empty without the SMS medium)",
    CLAIM_URL: (
        "the link to the holder's claim page, which shows the offer (empty in the SMS when the "
        "batch invites by email and SMS)"
    ),
    CRED_URL: "the link to the credential's certificate (schemas requiring a certificate)",
    ISSUER_NAME: (
        "the issuing organisation's name from its tenant profile (the schema's name when the "
        "profile gives none)"
    ),
    ISSUER_LOGO_URL: "the public URL of the organisation's logo (empty without one)",
    ISSUER_SUPPORT_EMAIL: "the organisation's support email address (empty without one)",
    ISSUER_SUPPORT_URL: "the organisation's support page (empty without one)",
    ISSUE_DATE: "the date of issuance, YYYY-MM-DD",
    OFFER_URL: (
        "the openid-credential-offer:// link a wallet claims the credential with (empty for "
        "download batches, and in the SMS when the batch invites by email and SMS)"
    ),
    TX_CODE: (
        "the 6-digit code the wallet asks for, in the SMS only, when the batch invites by "
        "email and SMS (empty otherwise); never in an email template, and never shown beside "
        "`claim_url` or `offer_url`: {% if tx_code %}...{% else %}...{% endif %} keeps them apart"
    ),
}

SAMPLE_SYSTEM_VALUES: dict[str, str] = {
    HOLDER_EMAIL: "holder@example.com",
    HOLDER_PHONE: "+442079460958",
    CLAIM_URL: "https://issuer.example.com/claim/SAMPLE",
    CRED_URL: "https://issuer.example.com/c/SAMPLE",
    ISSUER_NAME: "Example Issuer",
    ISSUER_LOGO_URL: "https://issuer.example.com/tenants/SAMPLE/logo/SAMPLE.png",
    ISSUER_SUPPORT_EMAIL: "support@issuer.example.com",
    ISSUER_SUPPORT_URL: "https://issuer.example.com/help",
    ISSUE_DATE: "2026-01-31",
    OFFER_URL: "openid-credential-offer://?credential_offer_uri=https%3A%2F%2Fissuer.example.com",
    TX_CODE: "123456",
}


def check_placeholders(
    template_fields: Mapping[str, CompiledTemplate], schema: SchemaVersion
) -> list[FieldViolation]:
    """A violation per placeholder that neither the schema nor the system provides.

    template_fields maps the request field path (e.g. `email_template.subject`) to the
    compiled template of that field.
    """
    attributes = {attribute.name for attribute in schema.attributes}
    known = attributes | set(SYSTEM_PLACEHOLDERS)
    if not schema.requires_certificate:
        known.discard(CRED_URL)
    by_lower = {name.lower(): name for name in known}
    violations: list[FieldViolation] = []
    for field, template in template_fields.items():
        for placeholder in sorted(template.placeholders - known):
            if placeholder == CRED_URL:
                description = (
                    "`Cred_URL` exists only for schemas that require a certificate; "
                    f"{schema.display_name} does not"
                )
            else:
                description = f"unknown placeholder `{placeholder}`"
                spelled = by_lower.get(placeholder.lower())
                if spelled is not None:
                    description += f" (placeholders are case-sensitive: did you mean `{spelled}`?)"
                else:
                    description += (
                        f"; the schema provides {_listing(sorted(attributes))} and the system "
                        f"provides {_listing(sorted(known - attributes))}"
                    )
            violations.append(FieldViolation(field, description, "UNKNOWN_PLACEHOLDER"))
    return violations


def _listing(names: Iterable[str]) -> str:
    return ", ".join(f"`{name}`" for name in names) or "nothing"


def format_value(value: Any) -> str:
    """The text a typed CSV value takes in a template."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def template_context(
    schema: SchemaVersion, values: Mapping[str, Any], system: Mapping[str, str]
) -> dict[str, str]:
    """Every placeholder a template may use for one record, as text.

    Optional attributes without a value render as empty text rather than failing under
    StrictUndefined: a template checked against the schema must render for every valid row.
    """
    context = {name: "" for name in SYSTEM_PLACEHOLDERS}
    if not schema.requires_certificate:
        del context[CRED_URL]
    context.update(system)
    for attribute in schema.attributes:
        context[attribute.name] = format_value(values.get(attribute.name))
    return context


def sample_context(
    schema: SchemaVersion | None,
    placeholders: Iterable[str],
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Values for a preview: the sample CSV row's values (or each placeholder's own name
    when there is no schema), the sample system values, then the caller's overrides."""
    context: dict[str, str] = {}
    if schema is None:
        context.update({name: name for name in placeholders})
        context.update(SAMPLE_SYSTEM_VALUES)
    else:
        columns = expected_columns(schema, [Medium.EMAIL, Medium.SMS])
        examples = {c.name: c.example for c in columns if c.attribute is not None}
        context = template_context(schema, examples, SAMPLE_SYSTEM_VALUES)
    context.update(overrides or {})
    return context
