"""Signing secrets in the Standard Webhooks form: ``whsec_`` + base64 of random bytes."""

from __future__ import annotations

import base64
import secrets

PREFIX = "whsec_"
SECRET_BYTES = 32
"""The key size of HMAC-SHA256's block-aligned output; the specification asks for 24 to 64."""


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: the base64-decoded bytes after ``whsec_``."""
    if not secret.startswith(PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    return base64.b64decode(secret[len(PREFIX) :], validate=True)
