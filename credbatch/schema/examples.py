"""Example values for the sample CSV: each is valid for its type under the value rules."""

from __future__ import annotations

from credbatch.schema.model import Attribute, AttributeType

EXAMPLE_EMAIL = "holder@example.com"
# A number from a range reserved for fiction (Ofcom, London 020 7946 0xxx): valid, never real.
EXAMPLE_PHONE = "+442079460958"

_EXAMPLES: dict[AttributeType, str] = {
    AttributeType.STRING: "Example text",
    AttributeType.INTEGER: "42",
    AttributeType.NUMBER: "3.14",
    AttributeType.BOOLEAN: "true",
    AttributeType.DATE: "2026-01-31",
    AttributeType.EMAIL: "someone@example.com",
    AttributeType.PHONE: EXAMPLE_PHONE,
    AttributeType.URL: "https://example.com/",
}

_FORMATS: dict[AttributeType, str] = {
    AttributeType.STRING: "text",
    AttributeType.INTEGER: "a whole number, e.g. 42",
    AttributeType.NUMBER: "a decimal number with a dot, e.g. 3.14",
    AttributeType.BOOLEAN: "true/false, yes/no, y/n or 1/0",
    AttributeType.DATE: "a date as YYYY-MM-DD",
    AttributeType.EMAIL: "an email address",
    AttributeType.PHONE: "a phone number, preferably international (+country code)",
    AttributeType.URL: "an http or https URL",
}


def example_value(attribute: Attribute) -> str:
    """A value valid for the attribute's type (for an ENUM its first allowed value)."""
    if attribute.type is AttributeType.ENUM:
        return attribute.enum_values[0] if attribute.enum_values else ""
    return _EXAMPLES[attribute.type]


def format_hint(attribute: Attribute) -> str:
    """How a value of the attribute is written, for column descriptions."""
    if attribute.type is AttributeType.ENUM:
        return "one of: " + ", ".join(attribute.enum_values)
    return _FORMATS[attribute.type]
