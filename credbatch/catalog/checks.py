"""Compile stored templates once and check them, for creation, previews, uploads and workers.

A template is checked when it is created (it compiles, passes the sandbox's parse checks,
never shows the wallet code with a link to its offer (credbatch.templating.channels) and
renders within its budgets with sample values, in the caller's render processes), and again
against a schema whenever the two are paired (every placeholder must exist). Only templates
that passed reach a worker.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from credbatch.catalog.model import CertificateTemplate, EmailTemplate, SmsTemplate
from credbatch.errors import FieldViolation, InvalidArgument
from credbatch.schema.model import SchemaVersion
from credbatch.templating.certificate import CompiledCertificate, check_layout
from credbatch.templating.channels import Message, template_violations
from credbatch.templating.placeholders import CRED_URL, SAMPLE_SYSTEM_VALUES, check_placeholders
from credbatch.templating.runner import CertificateJob, Renderer, TextJob
from credbatch.templating.sandbox import CompiledTemplate, Limits, TemplateProblem
from credbatch.templating.sms import sms_info

T = TypeVar("T")
C = TypeVar("C")

MAX_DISPLAY_NAME = 200
MAX_SMS_SEGMENTS = 10
SUBJECT_LIMITS = Limits(max_source_chars=2_000, max_output_chars=998, max_seconds=0.1)
SMS_LIMITS = Limits(max_source_chars=5_000, max_output_chars=2_000, max_seconds=0.1)
COMPILED_CACHE_SIZE = 128
"""Compiled template texts kept per process (a text is at most 100,000 characters)."""


@dataclass(frozen=True, slots=True)
class CompiledEmail:
    subject: CompiledTemplate
    html_body: CompiledTemplate
    text_body: CompiledTemplate

    def fields(self, prefix: str = "email_template") -> dict[str, CompiledTemplate]:
        return {
            f"{prefix}.subject": self.subject,
            f"{prefix}.html_body": self.html_body,
            f"{prefix}.text_body": self.text_body,
        }


@dataclass(frozen=True, slots=True)
class CompiledSms:
    body: CompiledTemplate

    def fields(self, prefix: str = "sms_template") -> dict[str, CompiledTemplate]:
        return {f"{prefix}.body": self.body}


def _violation(field: str, problem: TemplateProblem) -> FieldViolation:
    return FieldViolation(field, problem.message, problem.code)


def _refuse(message: str, violations: list[FieldViolation]) -> InvalidArgument:
    return InvalidArgument(message, reason="INVALID_TEMPLATE", violations=violations)


@functools.lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _compiled(source: str, html: bool, limits: Limits | None) -> CompiledTemplate:
    # Every upload compiles its batch's templates again to check them against the schema, and
    # compiling costs milliseconds while the texts rarely change. A compiled template is never
    # changed after it is built (each render keeps its own budget), so one copy serves every
    # caller; the key is the text itself, so an edited template is simply another entry.
    # Refused texts raise, and exceptions are not cached.
    return CompiledTemplate(source, html=html, limits=limits)


def _compile_fields(
    sources: Mapping[str, tuple[str, bool, Limits | None]],
) -> tuple[dict[str, CompiledTemplate], list[FieldViolation]]:
    compiled: dict[str, CompiledTemplate] = {}
    violations: list[FieldViolation] = []
    for field, (source, html, limits) in sources.items():
        if not source.strip():
            violations.append(FieldViolation(field, "a template text is required", "REQUIRED"))
            continue
        try:
            compiled[field] = _compiled(source, html, limits)
        except TemplateProblem as problem:
            violations.append(_violation(field, problem))
    return compiled, violations


def _check_display_name(display_name: str, field: str) -> list[FieldViolation]:
    if not display_name.strip():
        return [FieldViolation(field, "display_name is required", "REQUIRED")]
    if len(display_name) > MAX_DISPLAY_NAME:
        return [FieldViolation(field, f"at most {MAX_DISPLAY_NAME} characters", "TOO_LONG")]
    return []


def _trial_context(placeholders: frozenset[str]) -> dict[str, str]:
    # Each placeholder renders as its own name; system values as their samples.
    return {**{name: name for name in placeholders}, **SAMPLE_SYSTEM_VALUES}


def compile_email(template: EmailTemplate, prefix: str = "email_template") -> CompiledEmail:
    """Compile an email template; INVALID_ARGUMENT naming each bad field."""
    compiled, violations = _compile_fields(
        {
            f"{prefix}.subject": (template.subject, False, SUBJECT_LIMITS),
            f"{prefix}.html_body": (template.html_body, True, None),
            f"{prefix}.text_body": (template.text_body, False, None),
        }
    )
    if violations:
        raise _refuse("the email template is not valid", violations)
    return CompiledEmail(*compiled.values())


def compile_sms(template: SmsTemplate, prefix: str = "sms_template") -> CompiledSms:
    """Compile an SMS template; INVALID_ARGUMENT naming the body when it is bad."""
    compiled, violations = _compile_fields({f"{prefix}.body": (template.body, False, SMS_LIMITS)})
    if violations:
        raise _refuse("the SMS template is not valid", violations)
    return CompiledSms(*compiled.values())


def compile_certificate(
    template: CertificateTemplate, prefix: str = "certificate_template"
) -> CompiledCertificate:
    """Compile a certificate template; INVALID_ARGUMENT naming each bad field."""
    violations = check_layout(template.layout, f"{prefix}.layout")
    _, field_violations = _compile_fields(
        {
            f"{prefix}.title": (template.title, False, None),
            f"{prefix}.body": (template.body, False, None),
        }
    )
    violations.extend(field_violations)
    if violations:
        raise _refuse("the certificate template is not valid", violations)
    try:
        return CompiledCertificate(template.title, template.body, template.layout)
    except TemplateProblem as problem:  # pragma: no cover - the fields compiled above
        raise _refuse(
            "the certificate template is not valid", [_violation(prefix, problem)]
        ) from None


async def check_new_email(
    template: EmailTemplate, renderer: Renderer, tenant: str, prefix: str = "email_template"
) -> CompiledEmail:
    """Everything a new email template must pass before it is stored."""
    violations = _check_display_name(template.display_name, f"{prefix}.display_name")
    try:
        compiled = await _compile(compile_email, template, prefix)
    except InvalidArgument as error:
        raise _refuse(error.message, [*violations, *error.violations]) from None
    fields = compiled.fields(prefix)
    violations += template_violations(Message("email", prefix, template.display_name, fields))
    results = await renderer.render(
        tenant, [TextJob((part,), _trial_context(part.placeholders)) for part in fields.values()]
    )
    for field, result in zip(fields, results, strict=True):
        if isinstance(result, TemplateProblem):
            violations.append(_violation(field, result))
    if violations:
        raise _refuse("the email template is not valid", violations)
    return compiled


async def check_new_sms(
    template: SmsTemplate, renderer: Renderer, tenant: str, prefix: str = "sms_template"
) -> CompiledSms:
    """Everything a new SMS template must pass before it is stored."""
    violations = _check_display_name(template.display_name, f"{prefix}.display_name")
    try:
        compiled = await _compile(compile_sms, template, prefix)
    except InvalidArgument as error:
        raise _refuse(error.message, [*violations, *error.violations]) from None
    fields = compiled.fields(prefix)
    violations += template_violations(
        Message("SMS", f"{prefix}.body", template.display_name, fields)
    )
    [result] = await renderer.render(
        tenant, [TextJob((compiled.body,), _trial_context(compiled.body.placeholders))]
    )
    if isinstance(result, TemplateProblem):
        violations.append(_violation(f"{prefix}.body", result))
    else:
        [text] = result
        assert isinstance(text, str)
        segments = sms_info(text).segments
        if segments > MAX_SMS_SEGMENTS:
            violations.append(
                FieldViolation(
                    f"{prefix}.body",
                    f"the message takes {segments} SMS segments with sample values; at most "
                    f"{MAX_SMS_SEGMENTS} are allowed",
                    "SMS_TOO_LONG",
                )
            )
    if violations:
        raise _refuse("the SMS template is not valid", violations)
    return compiled


async def check_new_certificate(
    template: CertificateTemplate,
    renderer: Renderer,
    tenant: str,
    prefix: str = "certificate_template",
) -> CompiledCertificate:
    """Everything a new certificate template must pass before it is stored."""
    violations = _check_display_name(template.display_name, f"{prefix}.display_name")
    try:
        compiled = await _compile(compile_certificate, template, prefix)
    except InvalidArgument as error:
        raise _refuse(error.message, [*violations, *error.violations]) from None
    context = _trial_context(compiled.placeholders)
    title, body, pdf = await renderer.render(
        tenant,
        [
            TextJob((compiled.title,), context),
            TextJob((compiled.body,), context),
            CertificateJob(compiled, context, SAMPLE_SYSTEM_VALUES[CRED_URL]),
        ],
    )
    for name, result in (("title", title), ("body", body)):
        if isinstance(result, TemplateProblem):
            violations.append(_violation(f"{prefix}.{name}", result))
    if not violations and isinstance(pdf, TemplateProblem):  # the text does not fit the page
        violations.append(_violation(f"{prefix}.body", pdf))
    if violations:
        raise _refuse("the certificate template is not valid", violations)
    return compiled


async def _compile(compile_template: Callable[[T, str], C], template: T, prefix: str) -> C:
    # In a thread: compiling is linear in the source, up to a second or two of CPU for the
    # largest, and the event loop keeps serving other calls meanwhile.
    return await asyncio.to_thread(compile_template, template, prefix)


def check_against_schema(
    fields: Mapping[str, CompiledTemplate], schema: SchemaVersion, message: str
) -> None:
    """INVALID_ARGUMENT naming every placeholder the schema and system do not provide."""
    violations = check_placeholders(fields, schema)
    if violations:
        raise InvalidArgument(message, reason="UNKNOWN_PLACEHOLDER", violations=violations)
