"""AES-256-GCM wrapping of tenants' private signing keys under the key-encryption key (KEK).

Each wrapped key is stored with the id of the KEK that wrapped it (``kek_id``: a short hash,
never the KEK), so a worker started with another KEK says which one the key needs instead of
failing on a bare authentication tag, and ``credbatch keys rewrap`` knows what it moved.

The associated data binds a ciphertext to its tenant and kid: a wrapped key copied to another
tenant's row (or relabelled with another kid) fails to decrypt instead of signing for it.
"""

from __future__ import annotations

import hashlib
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
_KEK_ID_CONTEXT = b"credbatch kek id v1\x00"


def kek_id(kek: bytes) -> str:
    """A short public id of a KEK: 16 hex digits of a domain-separated SHA-256.

    Safe to store and log: a 256-bit key cannot be recovered from 64 bits of its hash.
    """
    return hashlib.sha256(_KEK_ID_CONTEXT + kek).hexdigest()[:16]


class KeyUnwrapError(Exception):
    """A wrapped key does not decrypt under this KEK for this tenant and kid."""


def associated_data(tenant_id: uuid.UUID, kid: str) -> bytes:
    """The GCM associated data: the tenant's 16 UUID bytes followed by the kid."""
    return tenant_id.bytes + kid.encode("utf-8")


def wrap(kek: bytes, tenant_id: uuid.UUID, kid: str, private_key: bytes) -> tuple[bytes, bytes]:
    """Encrypt ``private_key`` (PKCS#8 DER); returns ``(nonce, ciphertext)``."""
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(kek).encrypt(nonce, private_key, associated_data(tenant_id, kid))
    return nonce, ciphertext


def unwrap(kek: bytes, tenant_id: uuid.UUID, kid: str, nonce: bytes, ciphertext: bytes) -> bytes:
    """Decrypt a key wrapped by ``wrap``.

    Raises:
        KeyUnwrapError: wrong KEK, tenant or kid, or a tampered ciphertext.
    """
    try:
        return AESGCM(kek).decrypt(nonce, ciphertext, associated_data(tenant_id, kid))
    except InvalidTag:
        raise KeyUnwrapError(f"signing key {kid} does not decrypt under this KEK") from None
