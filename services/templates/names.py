"""Resource names of the TemplateService (AIP-122): parsing with clear errors."""

from __future__ import annotations

import re
import uuid

from credbatch.errors import FieldViolation, InvalidArgument

_SCHEMA = re.compile(r"schemas/(?P<id>[^/@]+)(?:@(?P<version>[0-9]{1,9}))?")
_TEMPLATE = re.compile(
    r"(?P<collection>emailTemplates|smsTemplates|certificateTemplates)/(?P<id>[^/]+)"
)

EMAIL = "emailTemplates"
SMS = "smsTemplates"
CERTIFICATE = "certificateTemplates"


def _invalid(field: str, description: str) -> InvalidArgument:
    return InvalidArgument(
        f"{field} is not a valid resource name",
        violations=[FieldViolation(field, description, "INVALID_NAME")],
    )


def _uuid(text: str, field: str, example: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise _invalid(field, f"expected {example} with a UUID id") from None


def parse_schema_name(
    name: str, field: str, *, versioned: bool = True
) -> tuple[uuid.UUID, int | None]:
    """`schemas/{id}` (version None: the latest) or `schemas/{id}@{version}`."""
    if not name:
        raise InvalidArgument(
            f"{field} is required", violations=[FieldViolation(field, "required", "REQUIRED")]
        )
    match = _SCHEMA.fullmatch(name)
    example = "`schemas/{id}` or `schemas/{id}@{version}`" if versioned else "`schemas/{id}`"
    if match is None or (match["version"] and not versioned):
        raise _invalid(field, f"expected {example}")
    schema_id = _uuid(match["id"], field, example)
    version = int(match["version"]) if match["version"] else None
    if version == 0:
        raise _invalid(field, "versions start at 1")
    return schema_id, version


def parse_template_name(
    name: str, field: str, collection: str | None = None
) -> tuple[str, uuid.UUID]:
    """`emailTemplates/{id}`, `smsTemplates/{id}` or `certificateTemplates/{id}`; with
    collection, only that one."""
    expected = (
        f"`{collection}/{{id}}`"
        if collection
        else ("`emailTemplates/{id}`, `smsTemplates/{id}` or `certificateTemplates/{id}`")
    )
    if not name:
        raise InvalidArgument(
            f"{field} is required", violations=[FieldViolation(field, "required", "REQUIRED")]
        )
    match = _TEMPLATE.fullmatch(name)
    if match is None or (collection is not None and match["collection"] != collection):
        raise _invalid(field, f"expected {expected}")
    return match["collection"], _uuid(match["id"], field, expected)
