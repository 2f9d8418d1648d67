"""Invitation templates, compiled once per batch and rendered per record.

Rendering uses Jinja2's immutable sandbox with StrictUndefined (the same rules the template
service checks templates with), HTML autoescaped, plain text not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import ImmutableSandboxedEnvironment

_HTML = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=True)
_TEXT = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)

# Used only when a tenant has no default template row at all (the template service normally
# provisions one); the wording is deliberately plain.
BUILTIN_EMAIL = (
    "Your credential is ready",
    "<p>Hello,</p><p>Your credential is ready. "
    '<a href="{{ claim_url }}">Claim it here</a>.</p>'
    '{% if Cred_URL %}<p>Certificate: <a href="{{ Cred_URL }}">{{ Cred_URL }}</a></p>{% endif %}',
    "Hello,\n\nYour credential is ready. Claim it here: {{ claim_url }}\n"
    "{% if Cred_URL %}Certificate: {{ Cred_URL }}\n{% endif %}",
)
BUILTIN_SMS = "Your credential is ready: {{ claim_url }}"


@dataclass(frozen=True)
class EmailTemplate:
    subject: Template
    html: Template
    text: Template

    @classmethod
    def compile(cls, subject: str, html: str, text: str) -> EmailTemplate:
        return cls(_TEXT.from_string(subject), _HTML.from_string(html), _TEXT.from_string(text))

    def render(self, values: dict[str, Any]) -> tuple[str, str, str]:
        """(subject, html, text); the subject is folded to one line."""
        subject = " ".join(self.subject.render(values).split())
        return subject, self.html.render(values), self.text.render(values)


@dataclass(frozen=True)
class SmsTemplate:
    body: Template

    @classmethod
    def compile(cls, body: str) -> SmsTemplate:
        return cls(_TEXT.from_string(body))

    def render(self, values: dict[str, Any]) -> str:
        return self.body.render(values).strip()


def template_values(
    attributes: dict[str, Any],
    *,
    email: str | None,
    phone: str | None,
    claim_url: str,
    cred_url: str | None,
    issuer_name: str,
    issue_date: str,
) -> dict[str, Any]:
    """The placeholders of invitation templates: the row's attributes and system values."""
    values = dict(attributes)
    values.update(
        email=email,
        phone=phone,
        claim_url=claim_url,
        claim_link=claim_url,
        Cred_URL=cred_url,
        cred_url=cred_url,
        issuer_name=issuer_name,
        issue_date=issue_date,
    )
    return values
