"""AIP-158 page tokens for lists ordered newest first by (created_at, id).

A token is opaque to clients (base64url of a small JSON document) and bound to the list it
came from, so a token of one list is refused by another.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import uuid

import orjson

from credbatch.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size(requested: int) -> int:
    """The effective page size: default when 0, at most MAX_PAGE_SIZE."""
    if requested < 0:
        raise InvalidArgument(
            "page_size must not be negative",
            violations=[FieldViolation("page_size", "must be 0 or more", "INVALID_PAGE_SIZE")],
        )
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_token(kind: str, created_at: datetime.datetime, item_id: uuid.UUID) -> str:
    payload = orjson.dumps({"k": kind, "t": created_at.isoformat(), "i": str(item_id)})
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_token(kind: str, token: str) -> tuple[datetime.datetime, uuid.UUID] | None:
    """The position after which the page starts; None for the first page."""
    if not token:
        return None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if payload["k"] != kind:
            raise ValueError("token of another list")
        return datetime.datetime.fromisoformat(payload["t"]), uuid.UUID(payload["i"])
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise InvalidArgument(
            "page_token is not a token of this list",
            violations=[
                FieldViolation(
                    "page_token",
                    "not a next_page_token returned by this list",
                    "INVALID_PAGE_TOKEN",
                )
            ],
        ) from None
