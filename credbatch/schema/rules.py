"""Rules a schema definition must follow before it is stored.

Every problem is reported (not only the first) as a FieldViolation whose field is the path of
the offending request field, so a client can show each next to its input.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from credbatch.errors import FieldViolation
from credbatch.locales import normalise_locale
from credbatch.schema.model import Attribute, AttributeType

MAX_DISPLAY_NAME = 200
MAX_DESCRIPTION = 2000
MAX_LABEL = 100
MAX_LABEL_LOCALES = 20
MAX_ATTRIBUTES = 200
MAX_ATTRIBUTE_NAME = 64
MAX_ENUM_VALUES = 500
MAX_ENUM_VALUE = 200
# A credential's lifetime: at most 100 years, so exp stays a sane timestamp.
MAX_VALIDITY_SECONDS = 100 * 366 * 24 * 3600

# Letters, digits and underscores, starting with a letter: safe as a CSV header, a JSON claim
# name and a Jinja2 placeholder alike.
ATTRIBUTE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*", re.ASCII)

# The recipient columns and the certificate link are filled from elsewhere, never from an
# attribute: an attribute of that name would make the CSV header ambiguous.
RESERVED_COLUMNS: dict[str, str] = {
    "email": "`email` is reserved: it is the recipient column added for MEDIUM_EMAIL",
    "phone": "`phone` is reserved: it is the recipient column added for MEDIUM_SMS",
    "cred_url": "`Cred_URL` is reserved: the system fills it with the certificate link",
}
# System placeholders of templates: an attribute of that name would be shadowed in templates.
RESERVED_PLACEHOLDERS = frozenset(
    {
        "holder_email",
        "holder_phone",
        "claim_url",
        "issuer_name",
        "issue_date",
        "issuer_logo_url",
        "issuer_support_email",
        "issuer_support_url",
    }
)
# Claims the issuer sets itself in an SD-JWT VC (RFC 7519, SD-JWT VC, Token Status List).
RESERVED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "vct", "cnf", "status", "_sd", "_sd_alg"}
)


def check_display_name(display_name: str, field: str) -> list[FieldViolation]:
    if not display_name.strip():
        return [FieldViolation(field, "display_name is required", "REQUIRED")]
    if len(display_name) > MAX_DISPLAY_NAME:
        return [
            FieldViolation(
                field, f"display_name is longer than {MAX_DISPLAY_NAME} characters", "TOO_LONG"
            )
        ]
    if display_name != display_name.strip():
        return [
            FieldViolation(
                field, "display_name must not start or end with spaces", "INVALID_DISPLAY_NAME"
            )
        ]
    return []


def check_schema_definition(
    display_name: str,
    attributes: Sequence[Attribute],
    *,
    description: str = "",
    validity_seconds: int | None = None,
    prefix: str = "schema",
) -> list[FieldViolation]:
    """All problems of a schema definition; empty when it may be stored."""
    violations = check_display_name(display_name, f"{prefix}.display_name")
    if len(description) > MAX_DESCRIPTION:
        violations.append(
            FieldViolation(
                f"{prefix}.description",
                f"description is longer than {MAX_DESCRIPTION} characters",
                "TOO_LONG",
            )
        )
    if validity_seconds is not None and not 0 < validity_seconds <= MAX_VALIDITY_SECONDS:
        violations.append(
            FieldViolation(
                f"{prefix}.credential_validity",
                "credential_validity must be a positive duration of at most 100 years",
                "INVALID_VALIDITY",
            )
        )
    if not attributes:
        violations.append(
            FieldViolation(
                f"{prefix}.attributes", "a schema needs at least one attribute", "REQUIRED"
            )
        )
    elif len(attributes) > MAX_ATTRIBUTES:
        violations.append(
            FieldViolation(
                f"{prefix}.attributes",
                f"a schema has at most {MAX_ATTRIBUTES} attributes",
                "TOO_MANY_ATTRIBUTES",
            )
        )
    seen: dict[str, int] = {}
    for index, attribute in enumerate(attributes):
        path = f"{prefix}.attributes[{index}]"
        violations.extend(_check_attribute(attribute, path))
        key = attribute.name.lower()
        if key in seen:
            violations.append(
                FieldViolation(
                    f"{path}.name",
                    f"attribute name `{attribute.name}` repeats attributes[{seen[key]}] "
                    "(names are compared ignoring case, as CSV headers are)",
                    "DUPLICATE_ATTRIBUTE",
                )
            )
        else:
            seen[key] = index
    return violations


def _check_attribute(attribute: Attribute, path: str) -> list[FieldViolation]:
    violations: list[FieldViolation] = []
    name = attribute.name
    key = name.lower()
    if not name:
        violations.append(FieldViolation(f"{path}.name", "name is required", "REQUIRED"))
    elif len(name) > MAX_ATTRIBUTE_NAME or ATTRIBUTE_NAME.fullmatch(name) is None:
        violations.append(
            FieldViolation(
                f"{path}.name",
                "a name has letters, digits and underscores, starts with a letter and has at "
                f"most {MAX_ATTRIBUTE_NAME} characters",
                "INVALID_ATTRIBUTE_NAME",
            )
        )
    elif key in RESERVED_COLUMNS:
        violations.append(
            FieldViolation(f"{path}.name", RESERVED_COLUMNS[key], "RESERVED_ATTRIBUTE_NAME")
        )
    elif key in RESERVED_PLACEHOLDERS:
        violations.append(
            FieldViolation(
                f"{path}.name",
                f"`{name}` is reserved: it is a system placeholder of templates",
                "RESERVED_ATTRIBUTE_NAME",
            )
        )
    elif key in RESERVED_CLAIMS:
        violations.append(
            FieldViolation(
                f"{path}.name",
                f"`{name}` is reserved: the issuer sets this claim of the credential itself",
                "RESERVED_ATTRIBUTE_NAME",
            )
        )
    if len(attribute.description) > MAX_DESCRIPTION:
        violations.append(
            FieldViolation(
                f"{path}.description",
                f"description is longer than {MAX_DESCRIPTION} characters",
                "TOO_LONG",
            )
        )
    violations.extend(_check_enum_values(attribute, path))
    violations.extend(_check_labels(attribute, path))
    return violations


def _check_labels(attribute: Attribute, path: str) -> list[FieldViolation]:
    field = f"{path}.labels"
    if len(attribute.labels) > MAX_LABEL_LOCALES:
        return [FieldViolation(field, f"at most {MAX_LABEL_LOCALES} locales", "TOO_MANY_ENTRIES")]
    violations: list[FieldViolation] = []
    seen: set[str] = set()
    for tag, label in attribute.labels:
        canonical = normalise_locale(tag)
        where = f"{field}[{tag[:40]!r}]"
        if canonical is None:
            violations.append(
                FieldViolation(
                    where, "not a BCP 47 language tag (e.g. en, de-CH)", "INVALID_LOCALE"
                )
            )
        elif canonical in seen:
            violations.append(FieldViolation(where, "locale given twice", "DUPLICATE_LOCALE"))
        seen.add(canonical or tag)
        if not label.strip() or len(label) > MAX_LABEL or not label.isprintable():
            violations.append(
                FieldViolation(where, f"1 to {MAX_LABEL} printable characters", "INVALID_LABEL")
            )
    return violations


def _check_enum_values(attribute: Attribute, path: str) -> list[FieldViolation]:
    field = f"{path}.enum_values"
    values = attribute.enum_values
    if attribute.type is not AttributeType.ENUM:
        if values:
            return [
                FieldViolation(field, "enum_values are only allowed for ENUM", "UNEXPECTED_FIELD")
            ]
        return []
    if not values:
        return [FieldViolation(field, "an ENUM attribute needs enum_values", "REQUIRED")]
    if len(values) > MAX_ENUM_VALUES:
        return [
            FieldViolation(
                field, f"an ENUM has at most {MAX_ENUM_VALUES} values", "TOO_MANY_VALUES"
            )
        ]
    violations: list[FieldViolation] = []
    seen: set[str] = set()
    for index, value in enumerate(values):
        where = f"{field}[{index}]"
        if not value.strip():
            violations.append(FieldViolation(where, "an enum value is empty", "REQUIRED"))
        elif value != value.strip() or len(value) > MAX_ENUM_VALUE:
            violations.append(
                FieldViolation(
                    where,
                    "an enum value has no surrounding spaces and at most "
                    f"{MAX_ENUM_VALUE} characters",
                    "INVALID_ENUM_VALUE",
                )
            )
        elif value.casefold() in seen:
            # CSV cells match enum values ignoring case, so these would be indistinguishable.
            violations.append(
                FieldViolation(
                    where, "enum values must be unique ignoring case", "DUPLICATE_ENUM_VALUE"
                )
            )
        seen.add(value.casefold())
    return violations
