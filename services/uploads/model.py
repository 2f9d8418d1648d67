"""Domain types of an upload (no protobuf here)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from credbatch.batches.claim_mode import ClaimMode
from credbatch.schema.model import Medium, SchemaVersion


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """The upload's header as the caller sent it (mediums the caller named; None = unknown)."""

    schema: str
    mediums: tuple[Medium | None, ...]
    email_template: str = ""
    sms_template: str = ""
    certificate_template: str = ""
    filename: str = ""
    request_id: str = ""
    validate_only: bool = False
    department: str = ""
    credential_validity_seconds: float | None = None
    # None: a value this server does not know; unspecified already became OID4VCI.
    claim_mode: ClaimMode | None = ClaimMode.OID4VCI
    # Empty: the tenant's default schedule (none when it has none).
    reminder_days: tuple[int, ...] = ()
    reminder_email_template: str = ""
    reminder_sms_template: str = ""


@dataclass(frozen=True, slots=True)
class CheckedRequest:
    """A header that passed the request rules that need no database."""

    schema_id: uuid.UUID
    schema_version: int | None  # None: the latest
    mediums: frozenset[Medium]
    email_template_id: uuid.UUID | None
    sms_template_id: uuid.UUID | None
    certificate_template_id: uuid.UUID | None
    filename: str
    request_id: str | None
    validate_only: bool
    department: str
    validity_seconds: int | None  # None: the schema's own
    claim_mode: ClaimMode
    reminder_days: tuple[int, ...] = ()  # empty: the tenant's default
    reminder_email_template_id: uuid.UUID | None = None
    reminder_sms_template_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class ResolvedUpload:
    """A checked header whose schema and templates exist, fit together and were looked up."""

    request: CheckedRequest
    schema: SchemaVersion
    email_template_id: uuid.UUID | None
    sms_template_id: uuid.UUID | None
    certificate_template_id: uuid.UUID | None

    @property
    def validity_seconds(self) -> int | None:
        if self.request.validity_seconds is not None:
            return self.request.validity_seconds
        return self.schema.validity_seconds
