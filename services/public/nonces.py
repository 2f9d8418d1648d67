"""Stateless c_nonces: issuing one writes nothing; spending one is recorded once.

A nonce is ``base64url(issued_at ‖ random ‖ HMAC-SHA256(key, tenant ‖ issued_at ‖ random))``
under ``CREDBATCH_NONCE_KEY``, which every replica of the public process shares. Checking it
needs no database: the MAC proves this issuer made it for this tenant, ``issued_at`` that it
is younger than ``TTL_SECONDS``. Its single use is enforced where it is spent: the credential
request records its digest until it expires (``public_nonce_use``), and a second proof with
it conflicts there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

# As long as a key proof may be old (oid4vci_proof.MAX_AGE_SECONDS): a wallet that fetched a
# nonce and built its proof within that time is not refused for the nonce.
TTL_SECONDS = 300
# A nonce issued this far in the future (the replicas' clocks differ) still counts.
MAX_SKEW_SECONDS = 60
MIN_KEY_BYTES = 32
_DOMAIN = b"credbatch c_nonce v1\x00"
_TIME = 8
_RANDOM = 16
_MAC = 32
_LENGTH = _TIME + _RANDOM + _MAC


@dataclass(frozen=True)
class Nonce:
    """A nonce that passed its MAC and age check: its SHA-256, and when it expires."""

    digest: bytes
    expires_at: int


class Nonces:
    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the nonce key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key

    def _mac(self, tenant_id: uuid.UUID, body: bytes) -> bytes:
        return hmac.new(self._key, _DOMAIN + tenant_id.bytes + body, hashlib.sha256).digest()

    def issue(self, tenant_id: uuid.UUID, now: float) -> str:
        body = int(now).to_bytes(_TIME, "big") + secrets.token_bytes(_RANDOM)
        raw = body + self._mac(tenant_id, body)
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def check(self, tenant_id: uuid.UUID, nonce: str, now: float) -> Nonce | None:
        """The nonce when this issuer made it for ``tenant_id`` and it has not expired; None
        when it is malformed, forged, another tenant's or stale (all ``invalid_nonce``)."""
        if len(nonce) > 2 * _LENGTH:
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) != _LENGTH:
            return None
        body, mac = raw[: _TIME + _RANDOM], raw[_TIME + _RANDOM :]
        if not hmac.compare_digest(mac, self._mac(tenant_id, body)):
            return None
        issued_at = int.from_bytes(body[:_TIME], "big")
        if not now - TTL_SECONDS < issued_at <= now + MAX_SKEW_SECONDS:
            return None
        return Nonce(hashlib.sha256(raw).digest(), issued_at + TTL_SECONDS)
