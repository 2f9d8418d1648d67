"""RenderTemplatePreview: a stored template rendered with sample values.

Compiled here (checked once more, off the event loop), rendered in the service's render
processes in the caller's tenant's name, like every render of a tenant's template.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

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
from credbatch.templating.runner import CertificateJob, Job, Renderer, Result, TextJob
from credbatch.templating.sandbox import CompiledTemplate, TemplateProblem
from credbatch.templating.sms import sms_info

T = TypeVar("T")
C = TypeVar("C")

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


@dataclass(frozen=True, slots=True)
class Rendering:
    """Where a preview renders: the service's render processes, for the caller's tenant."""

    renderer: Renderer
    tenant: str

    async def __call__(self, jobs: list[Job]) -> list[Result]:
        return await self.renderer.render(self.tenant, jobs)


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


def _texts(fields: Iterable[str], results: Iterable[Result]) -> list[str]:
    """Each field's text; INVALID_ARGUMENT naming the first field that did not render."""
    texts = []
    for field, result in zip(fields, results, strict=True):
        if isinstance(result, TemplateProblem):
            raise InvalidArgument(
                "the template does not render with these values",
                reason="TEMPLATE_RENDER_FAILED",
                violations=[FieldViolation(field, result.message, result.code)],
            )
        [text] = result
        assert isinstance(text, str)
        texts.append(text)
    return texts


async def _compile(compile_template: Callable[[T, str], C], template: T) -> C:
    # In a thread: compiling a large template takes up to a second or two of CPU.
    return await asyncio.to_thread(compile_template, template, PREFIX)


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


async def preview_email(
    template: EmailTemplate,
    schema: SchemaVersion | None,
    overrides: Mapping[str, str],
    render: Rendering,
) -> EmailPreview:
    compiled = await _compile(compile_email, template)
    fields = compiled.fields(PREFIX)
    context = _prepare(fields, schema, overrides)
    results = await render([TextJob((part,), context) for part in fields.values()])
    return EmailPreview(*_texts(fields, results))


async def preview_sms(
    template: SmsTemplate,
    schema: SchemaVersion | None,
    overrides: Mapping[str, str],
    render: Rendering,
) -> SmsPreview:
    compiled = await _compile(compile_sms, template)
    fields = compiled.fields(PREFIX)
    context = _prepare(fields, schema, overrides)
    [body] = _texts(fields, await render([TextJob((compiled.body,), context)]))
    info = sms_info(body)
    return SmsPreview(body, info.segments, info.encoding, info.length)


async def preview_certificate(
    template: CertificateTemplate,
    schema: SchemaVersion | None,
    overrides: Mapping[str, str],
    render: Rendering,
) -> CertificatePreview:
    compiled = await _compile(compile_certificate, template)
    fields = {f"{PREFIX}.title": compiled.title, f"{PREFIX}.body": compiled.body}
    context = _prepare(fields, schema, overrides)
    cred_url = overrides.get(CRED_URL) or SAMPLE_SYSTEM_VALUES[CRED_URL]
    context.setdefault(CRED_URL, cred_url)
    *texts, pdf = await render(
        [
            *(TextJob((part,), context) for part in fields.values()),
            CertificateJob(compiled, context, cred_url),
        ]
    )
    _texts(fields, texts)
    if isinstance(pdf, TemplateProblem):
        raise InvalidArgument(
            "the certificate does not render with these values",
            reason="TEMPLATE_RENDER_FAILED",
            violations=[FieldViolation(f"{PREFIX}.body", pdf.message, pdf.code)],
        )
    assert isinstance(pdf, bytes)
    return CertificatePreview(pdf, cred_url)
