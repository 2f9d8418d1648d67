"""Webhook signing secrets sealed at rest: AES-256-GCM under ``CREDBATCH_WEBHOOK_KEK``.

Whoever reads ``webhook_secrets`` without that key (a database dump, a backup, any process of
the application role but the two below) gets ciphertext only. The key is held by the webhook
service, which seals a secret when it creates one and shows it to the caller once, and by the
dispatchers, which open the live secrets to sign each delivery.

Each sealed secret is stored with the id of the key that sealed it (``kek_id``: the short
hash ``credbatch.signing.kek.kek_id`` gives signing keys' KEKs, never the key), so a process
started with another key says which key a secret needs instead of failing on a bare
authentication tag, and ``credbatch webhooks rewrap-secrets`` knows what it moved. The
associated data binds a ciphertext to its tenant, endpoint and secret id: a sealed secret
copied to another endpoint's row (or another tenant's) does not open there.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from credbatch.signing.kek import kek_id
from credbatch.webhooks.secrets import new_secret

NONCE_BYTES = 12
_CONTEXT = b"credbatch webhook secret v1\x00"


@dataclass(frozen=True)
class Sealed:
    """A secret as stored: ciphertext (with the GCM tag), its nonce, the sealing key's id."""

    ciphertext: bytes
    nonce: bytes
    kek_id: str


@dataclass(frozen=True)
class NewSecret:
    """A secret just drawn: its row id, the plain text shown once, and what is stored."""

    id: uuid.UUID
    secret: str
    sealed: Sealed


class SecretUnsealError(Exception):
    """A sealed secret does not open under this key for its tenant, endpoint and id."""


def associated_data(tenant_id: uuid.UUID, endpoint_id: uuid.UUID, secret_id: uuid.UUID) -> bytes:
    """The GCM associated data: a context label, then the three ids' 16 bytes each."""
    return _CONTEXT + tenant_id.bytes + endpoint_id.bytes + secret_id.bytes


class SecretBox:
    """Seals and opens webhook signing secrets under one key."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != 32:
            raise ValueError("the webhook KEK must be 32 bytes")
        self._aead = AESGCM(kek)
        self.kek_id = kek_id(kek)

    def seal(
        self, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, secret_id: uuid.UUID, secret: str
    ) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        data = associated_data(tenant_id, endpoint_id, secret_id)
        return Sealed(self._aead.encrypt(nonce, secret.encode(), data), nonce, self.kek_id)

    def new(self, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> NewSecret:
        """A fresh ``whsec_`` secret for the endpoint, sealed."""
        secret_id, secret = uuid.uuid4(), new_secret()
        return NewSecret(secret_id, secret, self.seal(tenant_id, endpoint_id, secret_id, secret))

    def open(
        self, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, secret_id: uuid.UUID, sealed: Sealed
    ) -> str:
        """The plain secret.

        Raises:
            SecretUnsealError: sealed under another key (said before trying, naming both key
                ids), or for another tenant, endpoint or id, or tampered with.
        """
        if sealed.kek_id != self.kek_id:
            raise SecretUnsealError(
                f"webhook secret {secret_id} is sealed under key {sealed.kek_id}, this process "
                f"has key {self.kek_id} (were the secrets rewrapped? restart with the new key)"
            )
        data = associated_data(tenant_id, endpoint_id, secret_id)
        try:
            return self._aead.decrypt(sealed.nonce, sealed.ciphertext, data).decode()
        except InvalidTag:
            raise SecretUnsealError(f"webhook secret {secret_id} does not open") from None
