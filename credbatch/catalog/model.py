"""Records of the catalog, as the repository returns them (no protobuf here)."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Generic, TypeVar

from credbatch import names
from credbatch.schema.model import Attribute, SchemaVersion
from credbatch.templating.certificate import CertificateLayout

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SchemaDraft:
    """The content of a schema version to create."""

    display_name: str
    attributes: tuple[Attribute, ...]
    requires_certificate: bool = False
    validity_seconds: int | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class StoredSchema:
    """One stored version of a schema, with what the schema row adds."""

    schema: SchemaVersion
    latest_version: int
    create_time: datetime.datetime


@dataclass(frozen=True, slots=True)
class EmailTemplate:
    id: uuid.UUID
    display_name: str
    subject: str
    html_body: str
    text_body: str
    is_default: bool = False
    create_time: datetime.datetime | None = None

    @property
    def name(self) -> str:
        return names.format_name(names.EMAIL_TEMPLATES, self.id)


@dataclass(frozen=True, slots=True)
class SmsTemplate:
    id: uuid.UUID
    display_name: str
    body: str
    is_default: bool = False
    create_time: datetime.datetime | None = None

    @property
    def name(self) -> str:
        return names.format_name(names.SMS_TEMPLATES, self.id)


@dataclass(frozen=True, slots=True)
class CertificateTemplate:
    id: uuid.UUID
    display_name: str
    title: str
    body: str
    layout: CertificateLayout
    create_time: datetime.datetime | None = None

    @property
    def name(self) -> str:
        return names.format_name(names.CERTIFICATE_TEMPLATES, self.id)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list (AIP-158); next_page_token is empty on the last page."""

    items: list[T]
    next_page_token: str = ""
