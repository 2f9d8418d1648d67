"""The secrets of a credential offer: its pre-authorized code and transaction code.

Both are derived, not drawn, so a worker re-sending an invitation after a crash or a retry
sends the same link and code again, and the database holds only their SHA-256 digests
(``digest``), which is all the token endpoint needs to check what a wallet presents.

* The pre-authorized code is derived from the record's claim token
  (``pre_authorized_code``): whoever holds the claim link may obtain the offer anyway, and so
  the claim page, which the public component serves without any key, can show the offer as a
  QR code.
* The transaction code is ``HMAC(k, tenant || record)`` under a key ``k`` derived from the
  KEK: it travels by the other channel, and the public endpoints, which hold no KEK, cannot
  mint one. A KEK rotation changes it, so an invitation re-sent after one carries a code its
  stored digest does not match.

Both take the offer's ``generation``: a record's first offer is generation 0 (derived exactly
as before generations existed, so stored offers keep their codes), and ResendInvitations
replaces it by generation 1, 2, ...: codes that an earlier offer's codes do not give, while a
re-sent invitation of the same generation still carries the same codes.
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


_CODE_LABEL = b"credbatch oid4vci pre-authorized code v1"


def _generation_label(label: bytes, generation: int) -> bytes:
    if generation < 0:
        raise ValueError("an offer generation is never negative")
    # Generation 0 keeps the label alone: the codes of offers stored before generations.
    return label if generation == 0 else label + b"\x00" + generation.to_bytes(4, "big")


def pre_authorized_code(tenant_id: uuid.UUID, claim_token: str, generation: int = 0) -> str:
    """The offer's pre-authorized code: the tenant, then a MAC keyed by the claim token."""
    label = _generation_label(_CODE_LABEL, generation)
    mac = hmac.new(claim_token.encode("utf-8"), label, hashlib.sha256).digest()
    raw = tenant_id.bytes + mac[:_CODE_RANDOM_BYTES]
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class OfferCodes:
    """Derives offer secrets; only processes holding the KEK (the workers) construct it."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != 32:
            raise ValueError("the KEK must be 32 bytes")
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(kek)

    def _mac(self, label: bytes, tenant_id: uuid.UUID, record_id: uuid.UUID) -> bytes:
        message = label + b"\x00" + tenant_id.bytes + record_id.bytes
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def secrets(
        self, tenant_id: uuid.UUID, record_id: uuid.UUID, claim_token: str, generation: int = 0
    ) -> OfferSecrets:
        """The codes of the record's offer of ``generation`` (0: its first)."""
        code = pre_authorized_code(tenant_id, claim_token, generation)
        label = _generation_label(b"tx", generation)
        # 64 bits reduced mod 10^6: the bias (< 10^-13) is far below any guessing advantage.
        number = int.from_bytes(self._mac(label, tenant_id, record_id)[:8], "big")
        return OfferSecrets(code, str(number % 10**TX_CODE_LENGTH).zfill(TX_CODE_LENGTH))
