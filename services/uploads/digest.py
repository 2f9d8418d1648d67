"""The digest of an upload request, kept with its request id.

An upload retried with the same request id gets the first batch only when it is the same
request: the same header (once normalised by the request rules) and byte for byte the same
file. The digest is SHA-256 over a version tag, the header's fields in a fixed JSON form and
the file; the request id and validate_only are left out (they do not change what is created),
and so is the chunking of the stream.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator

from services.uploads.model import CheckedRequest

_TAG = b"credbatch upload request v1\0"


def _header(checked: CheckedRequest) -> bytes:
    fields: dict[str, object] = {
        "schema_id": str(checked.schema_id),
        "schema_version": checked.schema_version,
        "mediums": sorted(medium.value for medium in checked.mediums),
        "email_template_id": _text(checked.email_template_id),
        "sms_template_id": _text(checked.sms_template_id),
        "certificate_template_id": _text(checked.certificate_template_id),
        "filename": checked.filename,
        "department": checked.department,
        "validity_seconds": checked.validity_seconds,
        "claim_mode": checked.claim_mode.value,
    }
    # Only when given: the digests of uploads without reminders stay what they were.
    if checked.reminder_days:
        fields["reminder_days"] = list(checked.reminder_days)
    if checked.reminder_email_template_id is not None:
        fields["reminder_email_template_id"] = str(checked.reminder_email_template_id)
    if checked.reminder_sms_template_id is not None:
        fields["reminder_sms_template_id"] = str(checked.reminder_sms_template_id)
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def _text(value: object | None) -> str | None:
    return None if value is None else str(value)


class RequestDigest:
    """Hashes the header, then the file's chunks as they pass through ``through``."""

    def __init__(self, checked: CheckedRequest) -> None:
        self._hash = hashlib.sha256(_TAG)
        header = _header(checked)
        # Length-prefixed, so no header can be read as another header plus file bytes.
        self._hash.update(len(header).to_bytes(8, "big") + header)

    async def through(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self._hash.update(chunk)
            yield chunk

    async def consume(self, chunks: AsyncIterator[bytes], limit: int) -> bytes | None:
        """Read the rest of the stream only to hash it: the digest, or None past ``limit``
        bytes (no accepted upload was larger, so such a file matches none: it is not read)."""
        read = 0
        async for chunk in self.through(chunks):
            read += len(chunk)
            if read > limit:
                return None
        return self.digest()

    def digest(self) -> bytes:
        return self._hash.digest()
