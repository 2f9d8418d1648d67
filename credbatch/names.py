"""Resource names (AIP-122): the one place they are formatted and parsed.

Every resource is `{collection}/{uuid}`; a schema version is also addressed as
`schemas/{uuid}@{version}`. Parsing accepts exactly that shape (a hyphenated UUID, a version
of 1 or more without leading zeros), so two different strings never name the same version,
and a bad name is an INVALID_ARGUMENT naming the request field it came from.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

from credbatch.errors import FieldViolation, InvalidArgument

SCHEMAS = "schemas"
EMAIL_TEMPLATES = "emailTemplates"
SMS_TEMPLATES = "smsTemplates"
CERTIFICATE_TEMPLATES = "certificateTemplates"
BATCHES = "batches"
RECORDS = "records"
TEMPLATE_COLLECTIONS = (EMAIL_TEMPLATES, SMS_TEMPLATES, CERTIFICATE_TEMPLATES)

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_VERSION = re.compile(r"[1-9][0-9]{0,8}")
# Names are echoed in errors; a long one is cut so an error never carries a whole payload.
_ECHO_CHARS = 100


def format_name(collection: str, resource_id: uuid.UUID) -> str:
    """`{collection}/{id}`."""
    return f"{collection}/{resource_id}"


def optional_name(collection: str, resource_id: uuid.UUID | None) -> str:
    """`{collection}/{id}`, or empty when there is no resource (an unset proto field)."""
    return "" if resource_id is None else format_name(collection, resource_id)


def schema_name(schema_id: uuid.UUID, version: int | None = None) -> str:
    """`schemas/{id}` (every version) or `schemas/{id}@{version}` (exactly that one)."""
    name = format_name(SCHEMAS, schema_id)
    return name if version is None else f"{name}@{version}"


def qualify(collection: str, text: str) -> str:
    """A name as a person types it: `{collection}/...` as given, a bare id prefixed.

    Nothing is checked here; the service that receives the name parses it.
    """
    text = text.strip()
    return text if text.startswith(f"{collection}/") else f"{collection}/{text}"


def parse_name(name: str, collection: str, field: str) -> uuid.UUID:
    """The id in `{collection}/{uuid}`.

    Raises:
        InvalidArgument: naming ``field``, when the name is empty or of another shape.
    """
    _, resource_id, _ = _parse(name, field, (collection,), versioned=False)
    return resource_id


def parse_record_name(name: str, field: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The batch id and record id in `batches/{uuid}/records/{uuid}`.

    Raises:
        InvalidArgument: naming ``field``, when the name is empty or of another shape.
    """
    if not name:
        raise InvalidArgument(
            f"{field} is required", violations=[FieldViolation(field, "is required", "REQUIRED")]
        )
    parts = name.split("/")
    if (
        len(parts) != 4
        or parts[0] != BATCHES
        or parts[2] != RECORDS
        or _UUID.fullmatch(parts[1]) is None
        or _UUID.fullmatch(parts[3]) is None
    ):
        raise _invalid(name, field, f"`{BATCHES}/{{uuid}}/{RECORDS}/{{uuid}}`")
    return uuid.UUID(parts[1]), uuid.UUID(parts[3])


def parse_template_name(
    name: str, field: str, collections: Sequence[str] = TEMPLATE_COLLECTIONS
) -> tuple[str, uuid.UUID]:
    """The collection and id of a template name in one of ``collections``.

    Raises:
        InvalidArgument: naming ``field``, when the name is empty or of another shape.
    """
    collection, resource_id, _ = _parse(name, field, tuple(collections), versioned=False)
    return collection, resource_id


def parse_schema_name(
    name: str, field: str, *, versioned: bool = True
) -> tuple[uuid.UUID, int | None]:
    """The id and version of `schemas/{uuid}` (version None: the latest) or, when
    ``versioned``, `schemas/{uuid}@{version}`.

    Raises:
        InvalidArgument: naming ``field``, when the name is empty or of another shape.
    """
    _, schema_id, version = _parse(name, field, (SCHEMAS,), versioned=versioned)
    return schema_id, version


def _parse(
    name: str, field: str, collections: tuple[str, ...], *, versioned: bool
) -> tuple[str, uuid.UUID, int | None]:
    if not name:
        raise InvalidArgument(
            f"{field} is required", violations=[FieldViolation(field, "is required", "REQUIRED")]
        )
    collection, slash, rest = name.partition("/")
    resource, at, version = rest.partition("@")
    if (
        not slash
        or collection not in collections
        or _UUID.fullmatch(resource) is None
        or (at and not (versioned and _VERSION.fullmatch(version)))
    ):
        raise _invalid(name, field, _expected(collections, versioned))
    return collection, uuid.UUID(resource), int(version) if at else None


def _expected(collections: tuple[str, ...], versioned: bool) -> str:
    shapes = [f"`{collection}/{{uuid}}`" for collection in collections]
    if versioned:
        shapes.append(f"`{SCHEMAS}/{{uuid}}@{{version}}` (version 1 or more)")
    if len(shapes) == 1:
        return shapes[0]
    return f"{', '.join(shapes[:-1])} or {shapes[-1]}"


def _invalid(name: str, field: str, expected: str) -> InvalidArgument:
    description = f"must be {expected}, got {name[:_ECHO_CHARS]!r}"
    return InvalidArgument(
        f"invalid {field}: {description}",
        reason="INVALID_NAME",
        violations=[FieldViolation(field, description, "INVALID_NAME")],
    )
