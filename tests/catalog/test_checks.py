"""Compiling stored templates: one compiled copy per text, edits and refusals never cached."""

from __future__ import annotations

import uuid

import pytest

from credbatch.catalog.checks import compile_email, compile_sms
from credbatch.catalog.model import EmailTemplate, SmsTemplate
from credbatch.errors import InvalidArgument


def _email(subject: str, text: str) -> EmailTemplate:
    return EmailTemplate(uuid.uuid4(), "Welcome", subject, "<p>{{ name }}</p>", text)


def test_the_same_text_is_compiled_once() -> None:
    subject = f"Hello {{{{ name }}}} {uuid.uuid4()}"
    first = compile_email(_email(subject, "{{ claim_url }}"))
    again = compile_email(_email(subject, "{{ claim_url }}"))
    assert again.subject is first.subject
    assert again.text_body is first.text_body


def test_an_edited_text_is_compiled_anew() -> None:
    marker = uuid.uuid4().hex
    before = compile_email(_email(f"{marker} {{{{ name }}}}", "{{ claim_url }}"))
    after = compile_email(_email(f"{marker} {{{{ grade }}}}", "{{ claim_url }}"))
    assert before.subject.placeholders == {"name"}
    assert after.subject.placeholders == {"grade"}


def test_a_refused_text_is_refused_every_time() -> None:
    body = f"{{{{ name }} {uuid.uuid4()}"  # never closed
    for _ in range(2):
        with pytest.raises(InvalidArgument) as refused:
            compile_sms(SmsTemplate(uuid.uuid4(), "Code", body))
        assert [v.field for v in refused.value.violations] == ["sms_template.body"]
