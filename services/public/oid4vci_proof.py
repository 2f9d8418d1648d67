"""Key proofs of the credential endpoint: ``jwt`` proofs (``openid4vci-proof+jwt``).

The proof shows the wallet holds the private key of the ``jwk`` its header carries, for this
issuer (``aud``), now (``iat`` within a window) and once (``nonce``, a c_nonce this issuer
handed out; whether it is fresh and unused is checked against the store afterwards, so the
checks here are pure). The key becomes the credential's ``cnf.jwk``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from credbatch.signing.bound_credential import holder_key
from credbatch.signing.jose import ALG, JoseError, parse_compact, verify_signature
from credbatch.signing.jose import public_key_from_jwk as jwk_key

TYP = "openid4vci-proof+jwt"
# How far a proof's iat may lie in the past (a nonce lives shorter) or, for clock skew, ahead.
MAX_AGE_SECONDS = 300
MAX_SKEW_SECONDS = 60


class ProofError(Exception):
    """The proof is invalid (``invalid_proof``)."""


@dataclass(frozen=True)
class Proof:
    holder_jwk: dict[str, str]
    nonce: str


def check_proof(proof: Any, *, audience: str, now: float) -> Proof:
    """Verify one ``jwt`` proof; raises ProofError naming the first problem."""
    if not isinstance(proof, str):
        raise ProofError("a jwt proof is a compact JWS")
    try:
        header, payload, signing_input, signature = parse_compact(proof)
    except JoseError:
        raise ProofError("the proof is not a compact JWS") from None
    if header.get("typ") != TYP:
        raise ProofError(f"typ must be {TYP}")
    if header.get("alg") != ALG:
        raise ProofError(f"alg must be {ALG}")
    if "kid" in header or "x5c" in header:
        raise ProofError("the holder key is given as jwk only")
    try:
        jwk = holder_key(header.get("jwk"))
        verify_signature(signing_input, signature, jwk_key(jwk))
    except JoseError as error:
        raise ProofError(str(error)) from None
    aud = payload.get("aud")
    if aud != audience and not (isinstance(aud, list) and aud == [audience]):
        raise ProofError("aud must be the credential issuer identifier")
    iat = payload.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise ProofError("iat is required")
    if not now - MAX_AGE_SECONDS <= iat <= now + MAX_SKEW_SECONDS:
        raise ProofError("iat is outside the accepted window")
    nonce = payload.get("nonce")
    if not isinstance(nonce, str) or not nonce:
        raise ProofError("nonce is required")
    return Proof(jwk, nonce)
