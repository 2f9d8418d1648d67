from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

from credbatch.schema.model import Attribute, AttributeType, SchemaVersion
from credbatch.templating.placeholders import check_placeholders, template_context
from credbatch.templating.sandbox import CompiledTemplate

SCHEMA = SchemaVersion(
    uuid.uuid4(),
    1,
    "Course",
    (
        Attribute("given_name", AttributeType.STRING, required=True),
        Attribute("score", AttributeType.NUMBER),
        Attribute("passed", AttributeType.BOOLEAN),
        Attribute("on", AttributeType.DATE),
    ),
)


def test_known_placeholders_pass_and_unknown_are_named_per_field() -> None:
    fields = {
        "t.subject": CompiledTemplate("{{ given_name }} {{ claim_url }} {{ issuer_name }}"),
        "t.body": CompiledTemplate("{{ Given_Name }} {{ nickname }} {{ Cred_URL }}"),
    }
    violations = check_placeholders(fields, SCHEMA)
    assert [(v.field, v.reason) for v in violations] == [
        ("t.body", "UNKNOWN_PLACEHOLDER"),
        ("t.body", "UNKNOWN_PLACEHOLDER"),
        ("t.body", "UNKNOWN_PLACEHOLDER"),
    ]
    text = " | ".join(v.description for v in violations)
    assert "Cred_URL" in text and "certificate" in text
    assert "did you mean `given_name`" in text
    assert "unknown placeholder `nickname`" in text


def test_context_fills_absent_optional_values_and_formats_types() -> None:
    context = template_context(
        SCHEMA,
        {"given_name": "Ann", "score": Decimal("9.50"), "passed": True},
        {"claim_url": "https://x/claim"},
    )
    assert context["score"] == "9.50"
    assert context["passed"] == "true"
    assert context["on"] == ""
    assert "Cred_URL" not in context
    template = CompiledTemplate("{{ given_name }} {{ on }} {{ claim_url }} {{ holder_phone }}")
    assert check_placeholders({"x": template}, SCHEMA) == []
    assert template.render(context) == "Ann  https://x/claim "
    assert template_context(SCHEMA, {"on": datetime.date(2026, 1, 2)}, {})["on"] == "2026-01-02"
