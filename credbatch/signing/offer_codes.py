"""The secrets of a credential offer: its pre-authorized code and transaction code.

Both are derived, not drawn: ``HMAC(k, tenant || record)`` under a key ``k`` derived from the
KEK, so a worker re-sending an invitation after a crash or a retry sends the same link and
code again without anything readable being stored. The database holds only SHA-256 digests
(``digest``), which is all the public endpoints need to check what a wallet presents: they
hold no KEK and cannot mint a code. A KEK rotation changes the derived values, so an
invitation re-sent after one carries codes its stored digests do not match.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TX_CODE_LENGTH = 6
_INFO = b"credbatch oid4vci offer codes v1"
_CODE_RANDOM_BYTES = 24


def digest(secret: str) -> bytes:
    """What the database stores of a code, access token or nonce."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


@dataclass(frozen=True)
class OfferSecrets:
    """A record's pre-authorized code (carries its tenant, like opaque ids) and tx code."""

    pre_authorized_code: str
    tx_code: str


class OfferCodes:
    """Derives offer secrets; only processes holding the KEK (the workers) construct it."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != 32:
            raise ValueError("the KEK must be 32 bytes")
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(kek)

    def _mac(self, label: bytes, tenant_id: uuid.UUID, record_id: uuid.UUID) -> bytes:
        message = label + b"\x00" + tenant_id.bytes + record_id.bytes
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def secrets(self, tenant_id: uuid.UUID, record_id: uuid.UUID) -> OfferSecrets:
        code_raw = tenant_id.bytes + self._mac(b"code", tenant_id, record_id)[:_CODE_RANDOM_BYTES]
        code = base64.urlsafe_b64encode(code_raw).rstrip(b"=").decode("ascii")
        # 64 bits reduced mod 10^6: the bias (< 10^-13) is far below any guessing advantage.
        number = int.from_bytes(self._mac(b"tx", tenant_id, record_id)[:8], "big")
        return OfferSecrets(code, str(number % 10**TX_CODE_LENGTH).zfill(TX_CODE_LENGTH))
