"""Opaque public ids (claim tokens, certificate ids) that carry their tenant.

``base64url(tenant uuid bytes || 24 random bytes)``: the public process, which has no caller,
decodes the tenant and looks the id up under that tenant's row-level security, so an id of
one tenant can never reach another's rows; the 192 random bits make ids unguessable.
"""

from __future__ import annotations

import base64
import binascii
import os
import uuid

_RANDOM_BYTES = 24
_LENGTH = 16 + _RANDOM_BYTES


def new_id(tenant_id: uuid.UUID) -> str:
    raw = tenant_id.bytes + os.urandom(_RANDOM_BYTES)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def tenant_of(opaque: str) -> uuid.UUID | None:
    """The tenant an id names, or None when the id is malformed."""
    if len(opaque) > 64 or not opaque.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(opaque + "=" * (-len(opaque) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != _LENGTH:
        return None
    return uuid.UUID(bytes=raw[:16])
