"""Per-record envelope senders (VERP): ``bounce+{token}@{bounce domain}``.

A bounce goes to the envelope sender of the message it reports, so the address it arrives
at names the record. The token is the record id and a MAC over it under
``CREDBATCH_BOUNCE_KEY`` (HMAC-SHA256, 96 bits kept), in lower-case base32 because some
mail systems change the case of local parts. Without the key nobody can make the token of a
record, so a forged bounce can name no record at all; with one record's token nobody can make
another's, of their own tenant or any other. A record id names one record of one tenant (the
database holds ids unique), so the MAC binds the token to that tenant's record.

The local part stays within the 64 characters RFC 5321 allows: 7 for ``bounce+`` and 45 for
the 28 bytes of id and MAC. Only ids are in it, nothing a reader of mail logs could learn a
recipient from.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

PREFIX = "bounce+"
_TAG_BYTES = 12
_TOKEN_CHARS = 45  # base32 of 16 + 12 bytes, padding dropped
_CONTEXT = b"credbatch verp v1\x00"


def _tag(key: bytes, record_id: uuid.UUID) -> bytes:
    return hmac.new(key, _CONTEXT + record_id.bytes, hashlib.sha256).digest()[:_TAG_BYTES]


def token(key: bytes, record_id: uuid.UUID) -> str:
    """The VERP token of ``record_id``."""
    raw = record_id.bytes + _tag(key, record_id)
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def address(key: bytes, domain: str, record_id: uuid.UUID) -> str:
    """The envelope sender of the record's invitation email."""
    return f"{PREFIX}{token(key, record_id)}@{domain}"


def record_of(key: bytes, domain: str, recipient: str) -> uuid.UUID | None:
    """The record whose VERP address ``recipient`` is, or None when it is not one of ours: a
    wrong domain, a malformed token, or a MAC that does not match (checked in constant time).
    """
    local, at, host = recipient.strip().strip("<>").rpartition("@")
    if not at or host.lower().rstrip(".") != domain:
        return None
    local = local.lower()
    if not local.startswith(PREFIX):
        return None
    text = local[len(PREFIX) :]
    if len(text) != _TOKEN_CHARS:
        return None
    try:
        raw = base64.b32decode(text.upper() + "===")
    except ValueError:
        return None
    record_id = uuid.UUID(bytes=raw[:16])
    if not hmac.compare_digest(raw[16:], _tag(key, record_id)):
        return None
    return record_id
