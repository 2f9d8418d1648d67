"""ListBatches page tokens (AIP-158): opaque, keyset, bound to the filter they were made for.

A token carries the (create_time, id) of the last batch of its page, so the next page starts
strictly after it whatever was inserted meanwhile (new batches sort before it, newest first).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

from credbatch.batches.model import PagePosition
from credbatch.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _invalid(field: str, description: str) -> InvalidArgument:
    return InvalidArgument(
        f"invalid {field}: {description}",
        reason=f"INVALID_{field.upper()}",
        violations=[FieldViolation(field, description, f"INVALID_{field.upper()}")],
    )


def page_size(requested: int) -> int:
    """The effective page size: default when unset, at most MAX_PAGE_SIZE (AIP-158)."""
    if requested < 0:
        raise _invalid("page_size", "must not be negative")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def _filter_digest(filter_text: str) -> str:
    return hashlib.sha256(filter_text.strip().encode()).hexdigest()[:16]


def encode_token(position: PagePosition, filter_text: str) -> str:
    # Microseconds since the epoch: exactly PostgreSQL's timestamptz resolution.
    micros = (position.create_time - _EPOCH) // timedelta(microseconds=1)
    payload = {"v": _VERSION, "t": micros, "i": str(position.id), "f": _filter_digest(filter_text)}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, filter_text: str) -> PagePosition | None:
    """The position a token stands for; None for an empty token (the first page)."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        if payload["v"] != _VERSION:
            raise ValueError("version")
        position = PagePosition(
            create_time=_EPOCH + timedelta(microseconds=int(payload["t"])),
            id=uuid.UUID(str(payload["i"])),
        )
        digest = str(payload["f"])
    except (binascii.Error, ValueError, KeyError, TypeError, OverflowError):
        raise _invalid("page_token", "not a token returned by ListBatches") from None
    if digest != _filter_digest(filter_text):
        raise _invalid(
            "page_token", "the token was returned for another filter; use the same filter"
        )
    return position
