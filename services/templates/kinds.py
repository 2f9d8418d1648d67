"""The three kinds of template as the TemplateService treats them: one descriptor each.

Creating, getting and listing a template is the same for every kind; what differs is how it
is stored (credbatch.catalog.template_kinds), how a new one is checked and how its fields
compile, all named here so the catalog and the servicer have one implementation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from credbatch.catalog import template_kinds
from credbatch.catalog.checks import (
    CompiledEmail,
    CompiledSms,
    check_new_certificate,
    check_new_email,
    check_new_sms,
    compile_certificate,
    compile_email,
    compile_sms,
)
from credbatch.catalog.model import CertificateTemplate, EmailTemplate, SmsTemplate
from credbatch.catalog.templates import Listed, TemplateKind
from credbatch.templating.certificate import CompiledCertificate
from credbatch.templating.runner import Renderer
from credbatch.templating.sandbox import CompiledTemplate

R = TypeVar("R", bound=Listed)
C = TypeVar("C")

Fields = Mapping[str, CompiledTemplate]


@dataclass(frozen=True)
class TemplateRules(Generic[R, C]):
    """One kind of template: how it is stored, checked when new, and compiled.

    Attributes:
        kind: how it is stored.
        check_new: everything a new template must pass (INVALID_ARGUMENT otherwise), its
            trial renders in the tenant's name.
        compile: compiles a template that passed its checks.
        fields: the compiled parts by request field, for pairing with a schema.
    """

    kind: TemplateKind[R]
    check_new: Callable[[R, Renderer, str], Awaitable[C]]
    compile: Callable[[R], C]
    fields: Callable[[C], Fields]

    async def checked_fields(self, template: R, renderer: Renderer, tenant: str) -> Fields:
        """A new template's compiled fields, once it passed its checks."""
        return self.fields(await self.check_new(template, renderer, tenant))

    def placeholders(self, template: R) -> frozenset[str]:
        """The placeholders a stored template uses (it passed its checks when created)."""
        parts = self.fields(self.compile(template)).values()
        return frozenset().union(*(part.placeholders for part in parts))


def _certificate_fields(compiled: CompiledCertificate) -> Fields:
    return {
        "certificate_template.title": compiled.title,
        "certificate_template.body": compiled.body,
    }


EMAIL: TemplateRules[EmailTemplate, CompiledEmail] = TemplateRules(
    template_kinds.EMAIL, check_new_email, compile_email, CompiledEmail.fields
)
SMS: TemplateRules[SmsTemplate, CompiledSms] = TemplateRules(
    template_kinds.SMS, check_new_sms, compile_sms, CompiledSms.fields
)
CERTIFICATE: TemplateRules[CertificateTemplate, CompiledCertificate] = TemplateRules(
    template_kinds.CERTIFICATE, check_new_certificate, compile_certificate, _certificate_fields
)
