from __future__ import annotations

import pytest

from credbatch.schema.model import Attribute, AttributeType
from credbatch.schema.rules import check_schema_definition


def _reasons(attributes: list[Attribute], display_name: str = "Diploma") -> dict[str, str]:
    return {v.field: v.reason for v in check_schema_definition(display_name, attributes)}


def test_a_valid_definition_has_no_violations() -> None:
    attributes = [
        Attribute("given_name", AttributeType.STRING, required=True),
        Attribute("grade", AttributeType.ENUM, enum_values=("A", "B")),
    ]
    assert check_schema_definition("Diploma", attributes) == []


@pytest.mark.parametrize("name", ["email", "EMAIL", "phone", "Cred_URL", "cred_url"])
def test_reserved_column_names_are_refused_with_the_reason(name: str) -> None:
    violations = check_schema_definition("D", [Attribute(name, AttributeType.STRING)])
    assert [v.field for v in violations] == ["schema.attributes[0].name"]
    assert violations[0].reason == "RESERVED_ATTRIBUTE_NAME"
    assert "reserved" in violations[0].description


@pytest.mark.parametrize("name", ["1abc", "a b", "a-b", "ä", "", "x" * 65])
def test_names_unusable_as_headers_are_refused(name: str) -> None:
    reasons = _reasons([Attribute(name, AttributeType.STRING)])
    assert reasons["schema.attributes[0].name"] in {"INVALID_ATTRIBUTE_NAME", "REQUIRED"}


def test_names_repeating_ignoring_case_are_refused() -> None:
    reasons = _reasons(
        [Attribute("Grade", AttributeType.STRING), Attribute("grade", AttributeType.STRING)]
    )
    assert reasons == {"schema.attributes[1].name": "DUPLICATE_ATTRIBUTE"}


def test_enum_values_rules() -> None:
    reasons = _reasons(
        [
            Attribute("a", AttributeType.ENUM),
            Attribute("b", AttributeType.ENUM, enum_values=("x", "X", " y", "")),
            Attribute("c", AttributeType.STRING, enum_values=("x",)),
        ]
    )
    assert reasons == {
        "schema.attributes[0].enum_values": "REQUIRED",
        "schema.attributes[1].enum_values[1]": "DUPLICATE_ENUM_VALUE",
        "schema.attributes[1].enum_values[2]": "INVALID_ENUM_VALUE",
        "schema.attributes[1].enum_values[3]": "REQUIRED",
        "schema.attributes[2].enum_values": "UNEXPECTED_FIELD",
    }


def test_display_name_and_attributes_are_required() -> None:
    reasons = _reasons([], display_name=" ")
    assert reasons == {"schema.display_name": "REQUIRED", "schema.attributes": "REQUIRED"}


def test_claims_set_by_the_issuer_are_refused() -> None:
    reasons = _reasons([Attribute("iss", AttributeType.STRING)])
    assert reasons == {"schema.attributes[0].name": "RESERVED_ATTRIBUTE_NAME"}
