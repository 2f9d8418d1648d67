"""RenderTemplatePreview: a stored template rendered with sample values."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from credbatch.catalog.checks import (
    check_against_schema,
    compile_certificate,
    compile_email,
    compile_sms,
)
from credbatch.catalog.model import CertificateTemplate, EmailTemplate, SmsTemplate
from credbatch.errors import FieldViolation, InvalidArgument
from credbatch.schema.model import SchemaVersion
from credbatch.templating.placeholders import (
    CRED_URL,
    SAMPLE_SYSTEM_VALUES,
    SYSTEM_PLACEHOLDERS,
    sample_context,
)
from credbatch.templating.sandbox import CompiledTemplate, TemplateProblem
from credbatch.templating.sms import sms_info

PREFIX = "template"
MAX_SAMPLE_VALUE = 4096


@dataclass(frozen=True, slots=True)
class EmailPreview:
    subject: str
    html_body: str
    text_body: str


@dataclass(frozen=True, slots=True)
class SmsPreview:
    body: str
    segments: int
    encoding: str
    length: int


@dataclass(frozen=True, slots=True)
class CertificatePreview:
    pdf: bytes
    cred_url: str


Preview = EmailPreview | SmsPreview | CertificatePreview


def _check_overrides(
    overrides: Mapping[str, str], schema: SchemaVersion | None, placeholders: Iterable[str]
) -> None:
    known = set(SYSTEM_PLACEHOLDERS) | set(placeholders)
    if schema is not None:
        known |= {attribute.name for attribute in schema.attributes}
    violations = []
    for key, value in sorted(overrides.items()):
        if key not in known:
            violations.append(
                FieldViolation(
                    f"sample_values[{key}]",
                    f"`{key}` is neither a placeholder of the template, an attribute of the "
                    "schema nor a system value",
                    "UNKNOWN_PLACEHOLDER",
                )
            )
        elif len(value) > MAX_SAMPLE_VALUE:
            violations.append(
                FieldViolation(
                    f"sample_values[{key}]",
                    f"at most {MAX_SAMPLE_VALUE} characters",
                    "TOO_LONG",
                )
            )
    if violations:
        raise InvalidArgument("sample_values are not valid", violations=violations)


def _render(field: str, template: CompiledTemplate, context: Mapping[str, str]) -> str:
    try:
        return template.render(context)
    except TemplateProblem as problem:
        raise InvalidArgument(
            "the template does not render with these values",
            reason="TEMPLATE_RENDER_FAILED",
            violations=[FieldViolation(field, problem.message, problem.code)],
        ) from None


def _prepare(
    fields: Mapping[str, CompiledTemplate],
    schema: SchemaVersion | None,
    overrides: Mapping[str, str],
) -> dict[str, str]:
    placeholders = frozenset().union(*(t.placeholders for t in fields.values()))
    if schema is not None:
        check_against_schema(
            fields, schema, "the template uses placeholders the schema does not provide"
        )
    _check_overrides(overrides, schema, placeholders)
    return sample_context(schema, placeholders, overrides)


def preview_email(
    template: EmailTemplate, schema: SchemaVersion | None, overrides: Mapping[str, str]
) -> EmailPreview:
    compiled = compile_email(template, PREFIX)
    fields = compiled.fields(PREFIX)
    context = _prepare(fields, schema, overrides)
    return EmailPreview(*(_render(field, part, context) for field, part in fields.items()))


def preview_sms(
    template: SmsTemplate, schema: SchemaVersion | None, overrides: Mapping[str, str]
) -> SmsPreview:
    compiled = compile_sms(template, PREFIX)
    fields = compiled.fields(PREFIX)
    context = _prepare(fields, schema, overrides)
    body = _render(f"{PREFIX}.body", compiled.body, context)
    info = sms_info(body)
    return SmsPreview(body, info.segments, info.encoding, info.length)


async def preview_certificate(
    template: CertificateTemplate, schema: SchemaVersion | None, overrides: Mapping[str, str]
) -> CertificatePreview:
    compiled = compile_certificate(template, PREFIX)
    fields = {f"{PREFIX}.title": compiled.title, f"{PREFIX}.body": compiled.body}
    context = _prepare(fields, schema, overrides)
    cred_url = overrides.get(CRED_URL) or SAMPLE_SYSTEM_VALUES[CRED_URL]
    context.setdefault(CRED_URL, cred_url)
    for field, part in fields.items():
        _render(field, part, context)
    try:
        # A few milliseconds of CPU: keep them off the event loop.
        pdf = await asyncio.to_thread(compiled.render, context, cred_url)
    except TemplateProblem as problem:
        raise InvalidArgument(
            "the certificate does not render with these values",
            reason="TEMPLATE_RENDER_FAILED",
            violations=[FieldViolation(f"{PREFIX}.body", problem.message, problem.code)],
        ) from None
    return CertificatePreview(pdf, cred_url)
