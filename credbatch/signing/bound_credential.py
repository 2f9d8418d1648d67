"""A holder-bound copy of a stored SD-JWT VC: the same claims, ``cnf.jwk`` the holder's key.

The worker's credential (signed at issuance, bound to no key) is the source of truth for
what the holder is issued: its always-visible claims (``iss``, ``vct``, ``status`` with the
record's status list entry, ``exp``) stay visible, its disclosures (the attributes,
``Cred_URL``) stay selectively disclosable, and ``cnf`` and a new ``iat`` are added as visible
claims. A credential stored before ``Cred_URL`` became disclosable carries it visible: its
bound copy discloses it selectively, like one issued today.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from credbatch.signing import sd_jwt
from credbatch.signing.jose import parse_compact, public_jwk, public_key_from_jwk


def holder_key(jwk: Any) -> dict[str, str]:
    """The holder's public JWK reduced to its P-256 members; raises JoseError otherwise."""
    if not isinstance(jwk, dict) or "d" in jwk:
        raise sd_jwt.SdJwtError("the holder key must be a public JWK")
    return public_jwk(public_key_from_jwk(jwk))


def bind(
    stored: str,
    holder_jwk: dict[str, Any],
    *,
    key: ec.EllipticCurvePrivateKey,
    kid: str,
    issued_at: int,
) -> str:
    """Sign ``stored``'s claims again with ``cnf.jwk`` = ``holder_jwk``."""
    jwt, disclosures = sd_jwt.split(stored)
    _, payload, _, _ = parse_compact(jwt)
    claims = {k: v for k, v in payload.items() if k not in ("_sd", "_sd_alg")}
    claims["iat"] = issued_at
    claims["cnf"] = {"jwk": holder_key(holder_jwk)}
    disclosable = dict(sd_jwt.decode_disclosure(d) for d in disclosures)
    for name in sd_jwt.DISCLOSABLE_ONLY.intersection(claims):
        disclosable[name] = claims.pop(name)
    return sd_jwt.issue(key=key, kid=kid, claims=claims, disclosable=disclosable)
