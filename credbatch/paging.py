"""AIP-158 paging for lists ordered newest first by (create_time, id): sizes and page tokens.

A token is the position of the last item of its page, so the next page starts strictly after
it whatever was inserted meanwhile (newer items sort before it). It is opaque to clients
(base64url) and bound to the list and the filter it was made for: the list's name and a
digest of the filter travel inside it, and a token of another list or filter is refused with
a message saying so.

Tokens are tamper-evident, not secret: a checksum over the whole token makes an edited or
truncated token fail, but a client that recomputes it can forge a position. That is harmless:
a position only says where a page starts, and every query is scoped by row-level security to
rows the caller may see anyway, so no key has to be shared between replicas.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from credbatch.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHECKSUM_BYTES = 8


@dataclass(frozen=True)
class PagePosition:
    """Where a page ended: the (create_time, id) of its last item."""

    create_time: datetime
    id: uuid.UUID


def page_size(requested: int) -> int:
    """The effective page size: the default when 0 (unset), at most MAX_PAGE_SIZE.

    Raises:
        InvalidArgument: naming ``page_size``, when it is negative.
    """
    if requested < 0:
        raise _invalid("page_size", "INVALID_PAGE_SIZE", "must be 0 (the default) or more")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_token(list_name: str, position: PagePosition, filter_text: str = "") -> str:
    """The next_page_token of a page of ``list_name`` that ended at ``position``."""
    # Microseconds since the epoch: exactly PostgreSQL's timestamptz resolution.
    micros = (position.create_time - _EPOCH) // timedelta(microseconds=1)
    body = json.dumps(
        {
            "v": _VERSION,
            "l": list_name,
            "f": _filter_digest(filter_text),
            "t": micros,
            "i": str(position.id),
        },
        separators=(",", ":"),
    ).encode()
    return base64.urlsafe_b64encode(body + _checksum(body)).decode().rstrip("=")


def next_page_token(
    list_name: str, fetched: Sequence[PagePosition], limit: int, filter_text: str = ""
) -> str:
    """The token of the page after the first ``limit`` of ``fetched``; empty on the last page.

    Lists fetch ``limit + 1`` items: the one more tells whether a next page exists.
    """
    if len(fetched) <= limit:
        return ""
    return encode_token(list_name, fetched[limit - 1], filter_text)


def decode_token(list_name: str, token: str, filter_text: str = "") -> PagePosition | None:
    """The position a page_token stands for; None for an empty token (the first page).

    Raises:
        InvalidArgument: naming ``page_token``, when it is not a token this list returned
            for this filter.
    """
    if not token:
        return None
    payload = _checked(list_name, token, filter_text)
    try:
        return PagePosition(
            create_time=_EPOCH + timedelta(microseconds=int(payload["t"])),
            id=uuid.UUID(str(payload["i"])),
        )
    except (KeyError, TypeError, ValueError, OverflowError):
        raise _invalid(
            "page_token", "INVALID_PAGE_TOKEN", f"not a next_page_token returned by {list_name}"
        ) from None


def encode_row_token(list_name: str, parent: str, row_number: int, filter_text: str = "") -> str:
    """The next_page_token of a list in row order under ``parent`` whose page ended at a row.

    Lists of a batch's records page by row number, not by (create_time, id); the token is
    bound to the parent as well, so a token of one batch is refused for another.
    """
    body = json.dumps(
        {
            "v": _VERSION,
            "l": list_name,
            "p": parent,
            "f": _filter_digest(filter_text),
            "r": row_number,
        },
        separators=(",", ":"),
    ).encode()
    return base64.urlsafe_b64encode(body + _checksum(body)).decode().rstrip("=")


def decode_row_token(list_name: str, parent: str, token: str, filter_text: str = "") -> int:
    """The row number a page_token of ``encode_row_token`` ends at; 0 for the first page.

    Raises:
        InvalidArgument: naming ``page_token``, when it is not a token this list returned
            for this parent and filter.
    """
    if not token:
        return 0
    payload = _checked(list_name, token, filter_text)
    row = payload.get("r")
    if not isinstance(row, int) or isinstance(row, bool) or row < 0:
        raise _invalid(
            "page_token", "INVALID_PAGE_TOKEN", f"not a next_page_token returned by {list_name}"
        )
    if payload.get("p") != parent:
        raise _invalid(
            "page_token",
            "INVALID_PAGE_TOKEN",
            f"the token was returned for another parent; {parent} did not return it",
        )
    return row


def _checked(list_name: str, token: str, filter_text: str) -> dict[str, Any]:
    """The token's document when this list returned it for this filter; raises otherwise."""
    payload = _payload(token)
    if payload is None:
        raise _invalid(
            "page_token", "INVALID_PAGE_TOKEN", f"not a next_page_token returned by {list_name}"
        )
    if payload.get("l") != list_name:
        raise _invalid(
            "page_token",
            "INVALID_PAGE_TOKEN",
            f"a token of another list; {list_name} did not return it",
        )
    if payload.get("f") != _filter_digest(filter_text):
        raise _invalid(
            "page_token",
            "INVALID_PAGE_TOKEN",
            "the token was returned for another filter; repeat the same filter",
        )
    return payload


def _payload(token: str) -> dict[str, Any] | None:
    """The token's document when it decodes and its checksum holds; None otherwise."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    body, checksum = raw[:-_CHECKSUM_BYTES], raw[-_CHECKSUM_BYTES:]
    if not body or not hmac.compare_digest(checksum, _checksum(body)):
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("v") != _VERSION:
        return None
    return payload


def _checksum(body: bytes) -> bytes:
    return hashlib.sha256(b"credbatch page token\0" + body).digest()[:_CHECKSUM_BYTES]


def _filter_digest(filter_text: str) -> str:
    # Surrounding blanks do not change a filter's meaning, so they do not change its token.
    return hashlib.sha256(filter_text.strip().encode()).hexdigest()[:16]


def _invalid(field: str, reason: str, description: str) -> InvalidArgument:
    return InvalidArgument(
        f"invalid {field}: {description}",
        reason=reason,
        violations=[FieldViolation(field, description, reason)],
    )
