"""What a render process is asked to do: jobs, the templates they use, and their time.

A job is one record's message: the text templates of an email or an SMS rendered with the same
values, or a certificate's PDF. Templates travel by key (a digest of everything they were
compiled from); a render process compiles each key once and keeps it, so after the first
request only the values cross the process boundary.
"""

from __future__ import annotations

import hashlib
import pickle
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from credbatch.templating.certificate import CertificateLayout, CompiledCertificate
from credbatch.templating.problems import (
    TEMPLATE_OUTPUT_TOO_LARGE,
    TEMPLATE_RENDER_ERROR,
    TemplateProblem,
)
from credbatch.templating.sandbox import CompiledTemplate, Limits

# Drawing a certificate's page and QR code, beyond its title's and body's render budgets: a
# few milliseconds for the largest text a page holds.
PDF_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class TextJob:
    """Text templates rendered with the same values (an email's subject and bodies)."""

    templates: tuple[CompiledTemplate, ...]
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CertificateJob:
    """A certificate's PDF for one credential."""

    certificate: CompiledCertificate
    values: Mapping[str, Any]
    cred_url: str


Job = TextJob | CertificateJob
Rendered = tuple[str, ...] | bytes
"""A text job's texts, in the order of its templates, or a certificate job's PDF."""
Result = Rendered | TemplateProblem


class Renderer(Protocol):
    """Renders jobs of one tenant (RenderPool, in processes of its own)."""

    async def render(self, tenant: str, jobs: Sequence[Job]) -> list[Result]:
        """Each job's output or TemplateProblem, in order."""
        ...


@dataclass(frozen=True, slots=True)
class TextSource:
    source: str
    html: bool
    limits: Limits


@dataclass(frozen=True, slots=True)
class CertificateSource:
    title: str
    body: str
    layout: CertificateLayout


Source = TextSource | CertificateSource

_keys: weakref.WeakKeyDictionary[object, str] = weakref.WeakKeyDictionary()


def source_of(template: CompiledTemplate | CompiledCertificate) -> Source:
    if isinstance(template, CompiledTemplate):
        return TextSource(template.source, template.html, template.limits)
    return CertificateSource(template.title.source, template.body.source, template.layout)


def key_of(template: CompiledTemplate | CompiledCertificate) -> str:
    """A digest of everything the template was compiled from (computed once per object)."""
    key = _keys.get(template)
    if key is None:
        # Pickled as the render process receives it (a logo's bytes as they are).
        key = hashlib.sha256(pickle.dumps(source_of(template), protocol=5)).hexdigest()
        _keys[template] = key
    return key


def templates_of(job: Job) -> tuple[CompiledTemplate | CompiledCertificate, ...]:
    return job.templates if isinstance(job, TextJob) else (job.certificate,)


def seconds_of(job: Job) -> float:
    """The time budget of a job: its templates' render budgets (and a page to draw)."""
    if isinstance(job, TextJob):
        return sum(template.limits.max_seconds for template in job.templates)
    certificate = job.certificate
    return certificate.title.limits.max_seconds + certificate.body.limits.max_seconds + PDF_SECONDS


def compile_source(source: Source) -> CompiledTemplate | CompiledCertificate:
    """Raises TemplateProblem."""
    if isinstance(source, TextSource):
        return CompiledTemplate(source.source, html=source.html, limits=source.limits)
    return CompiledCertificate(source.title, source.body, source.layout)


def run(
    templates: tuple[CompiledTemplate | CompiledCertificate | TemplateProblem, ...],
    values: Mapping[str, Any],
    cred_url: str | None,
) -> Result:
    """Render one job from its compiled templates (a certificate's when cred_url is set).

    Every failure is a TemplateProblem, whatever raised it.
    """
    try:
        for template in templates:
            if isinstance(template, TemplateProblem):
                return template
        if cred_url is not None:
            [certificate] = templates
            assert isinstance(certificate, CompiledCertificate)
            return certificate.render(values, cred_url)
        texts: list[str] = []
        for template in templates:
            assert isinstance(template, CompiledTemplate)
            texts.append(template.render(values))
        return tuple(texts)
    except TemplateProblem as problem:
        return problem
    except MemoryError:
        return TemplateProblem(TEMPLATE_OUTPUT_TOO_LARGE, "the template is too large")
    except Exception as error:  # a failure of tenant-written code or of drawing its page
        return TemplateProblem(
            TEMPLATE_RENDER_ERROR, f"the template failed to render ({type(error).__name__})"
        )
