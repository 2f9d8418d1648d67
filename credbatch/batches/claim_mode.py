"""How the holders of a batch receive their credentials (``batches.claim_mode``)."""

from __future__ import annotations

from enum import StrEnum


class ClaimMode(StrEnum):
    # A credential offer to the holder's wallet (OpenID for Verifiable Credential Issuance);
    # the credential is bound to the wallet's key and the bearer download is closed.
    OID4VCI = "OID4VCI"
    # The bearer claim page and its download, for holders without a wallet.
    DOWNLOAD = "DOWNLOAD"
