"""Per-send envelope senders (VERP): ``bounce+{token}@{bounce domain}``.

A bounce goes to the envelope sender of the message it reports, so the address it arrives
at names the send. The token is the record id, the number of the record's email send
(``records.email_send``: raised each time the invitation is to go out again, after a
correction or a resend) and a MAC over both under ``CREDBATCH_BOUNCE_KEY`` (HMAC-SHA256, 96
bits kept), in lower-case base32 because some mail systems change the case of local parts.
Without the key nobody can make the token of a record, so a forged bounce can name no record
at all; with one record's token nobody can make another's, of their own tenant or any other,
nor another send's of the same record. A record id names one record of one tenant (the
database holds ids unique), so the MAC binds the token to that tenant's record. The send's
number lets a late bounce of a superseded invitation be told from one of the invitation now
out (``public_email_deliveries`` records the first as stale).

The local part stays within the 64 characters RFC 5321 allows: 7 for ``bounce+`` and 52 for
the 32 bytes of id, send and MAC. Only ids are in it, nothing a reader of mail logs could
learn a recipient from. Tokens of the first version (45 characters: id and MAC, no send
number) still name their record, as its send 0: invitations already out when this format came
keep their bounces.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass

PREFIX = "bounce+"
_TAG_BYTES = 12
_SEND_BYTES = 4
_TOKEN_CHARS = 52  # base32 of 16 + 4 + 12 bytes, padding dropped
_CONTEXT = b"credbatch verp v2\x00"
_V1_TOKEN_CHARS = 45  # base32 of 16 + 12 bytes: id and MAC
_V1_CONTEXT = b"credbatch verp v1\x00"
MAX_SEND = 2**32 - 1


@dataclass(frozen=True)
class Send:
    """One send of a record's email invitation: the record, and which of its sends."""

    record_id: uuid.UUID
    number: int


def _tag(key: bytes, record_id: uuid.UUID, number: int) -> bytes:
    message = _CONTEXT + record_id.bytes + number.to_bytes(_SEND_BYTES, "big")
    return hmac.new(key, message, hashlib.sha256).digest()[:_TAG_BYTES]


def _v1_tag(key: bytes, record_id: uuid.UUID) -> bytes:
    return hmac.new(key, _V1_CONTEXT + record_id.bytes, hashlib.sha256).digest()[:_TAG_BYTES]


def token(key: bytes, record_id: uuid.UUID, number: int = 0) -> str:
    """The VERP token of send ``number`` of ``record_id``'s email invitation."""
    if not 0 <= number <= MAX_SEND:
        raise ValueError(f"a send number is between 0 and {MAX_SEND}")
    raw = record_id.bytes + number.to_bytes(_SEND_BYTES, "big") + _tag(key, record_id, number)
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def address(key: bytes, domain: str, record_id: uuid.UUID, number: int = 0) -> str:
    """The envelope sender of send ``number`` of the record's invitation email."""
    return f"{PREFIX}{token(key, record_id, number)}@{domain}"


def send_of(key: bytes, domain: str, recipient: str) -> Send | None:
    """The send whose VERP address ``recipient`` is, or None when it is not one of ours: a
    wrong domain, a malformed token, or a MAC that does not match (checked in constant time).
    """
    local, at, host = recipient.strip().strip("<>").rpartition("@")
    if not at or host.lower().rstrip(".") != domain:
        return None
    local = local.lower()
    if not local.startswith(PREFIX):
        return None
    text = local[len(PREFIX) :]
    if len(text) not in (_TOKEN_CHARS, _V1_TOKEN_CHARS):
        return None
    try:
        raw = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except ValueError:
        return None
    record_id = uuid.UUID(bytes=raw[:16])
    if len(text) == _V1_TOKEN_CHARS:
        if not hmac.compare_digest(raw[16:], _v1_tag(key, record_id)):
            return None
        return Send(record_id, 0)
    number = int.from_bytes(raw[16 : 16 + _SEND_BYTES], "big")
    if not hmac.compare_digest(raw[16 + _SEND_BYTES :], _tag(key, record_id, number)):
        return None
    return Send(record_id, number)
