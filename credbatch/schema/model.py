"""Domain model of a credential schema version (no protobuf here)."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from credbatch import names


class AttributeType(enum.Enum):
    """The type every value of an attribute (one CSV column) must have."""

    STRING = "STRING"
    INTEGER = "INTEGER"
    NUMBER = "NUMBER"
    BOOLEAN = "BOOLEAN"
    DATE = "DATE"
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    URL = "URL"
    ENUM = "ENUM"


class Medium(enum.Enum):
    """How a holder is invited; each medium adds its recipient column to the CSV."""

    EMAIL = "EMAIL"
    SMS = "SMS"


@dataclass(frozen=True, slots=True)
class Attribute:
    """One claim of the credential and one column of the batch CSV."""

    name: str
    type: AttributeType
    required: bool = False
    description: str = ""
    enum_values: tuple[str, ...] = ()
    # The label per BCP 47 locale, in the order given.
    labels: tuple[tuple[str, str], ...] = ()

    def label(self, locale: str | None = None) -> str:
        """The label in ``locale``; the description, else the name, where it has none."""
        for tag, text in self.labels:
            if tag == locale:
                return text
        return self.description or self.name


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One immutable version of a credential schema."""

    schema_id: uuid.UUID
    version: int
    display_name: str
    attributes: tuple[Attribute, ...]
    requires_certificate: bool = False
    validity_seconds: int | None = None
    description: str = ""

    @property
    def name(self) -> str:
        """Resource name of the schema (all versions): `schemas/{id}`."""
        return names.schema_name(self.schema_id)

    @property
    def versioned_name(self) -> str:
        """Resource name of exactly this version: `schemas/{id}@{version}`."""
        return names.schema_name(self.schema_id, self.version)
