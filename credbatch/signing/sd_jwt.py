"""SD-JWT VC issuance and verification (RFC 9901, IETF SD-JWT-based Verifiable Credentials).

An issued credential is ``<issuer-signed JWT>~<disclosure>~...~`` (no key binding JWT). Each
schema attribute is a selectively disclosable top-level claim: its disclosure is the base64url
JSON array ``[salt, name, value]`` and the JWT carries only its digest in ``_sd``.

``Cred_URL``, the link to the certificate, is always selectively disclosable too: the PDF it
leads to shows every attribute, so a visible link would hand each verifier what the holder
chose not to disclose. ``issue`` refuses it among the always-visible claims.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from credbatch.signing.jose import (
    JoseError,
    b64url,
    b64url_decode,
    sign_compact,
    verify_compact,
)

TYP = "dc+sd-jwt"
SD_ALG = "sha-256"
_SALT_BYTES = 16
# Registered and SD-JWT claims an attribute must never shadow.
RESERVED_CLAIMS = frozenset(
    {
        "iss",
        "sub",
        "iat",
        "exp",
        "nbf",
        "vct",
        "vct#integrity",
        "status",
        "cnf",
        "_sd",
        "_sd_alg",
        "...",
    }
)
# Claims never issued always-visible (see the module docstring).
DISCLOSABLE_ONLY = frozenset({"Cred_URL"})


class SdJwtError(JoseError):
    """A presented SD-JWT is malformed, tampered with or does not verify."""


def _digest(disclosure: str) -> str:
    return b64url(hashlib.sha256(disclosure.encode("ascii")).digest())


def make_disclosure(name: str, value: Any, salt: str | None = None) -> str:
    """The base64url disclosure of one object property."""
    salt = salt if salt is not None else b64url(os.urandom(_SALT_BYTES))
    return b64url(orjson.dumps([salt, name, value]))


def issue(
    *,
    key: ec.EllipticCurvePrivateKey,
    kid: str,
    claims: Mapping[str, Any],
    disclosable: Mapping[str, Any],
) -> str:
    """Sign an SD-JWT VC.

    Args:
        key: the tenant's active ES256 key.
        kid: its key id (RFC 7638 thumbprint), put in the header.
        claims: always-visible claims (iss, vct, iat, exp, status, ...).
        disclosable: claims to make selectively disclosable, typed JSON values (the schema's
            attributes, Cred_URL).

    Raises:
        ValueError: a disclosable claim shadows a reserved one, or ``claims`` holds one that
            must be disclosable (``DISCLOSABLE_ONLY``).
    """
    clash = RESERVED_CLAIMS.intersection(disclosable)
    if clash:
        raise ValueError(f"disclosable claims shadow reserved ones: {sorted(clash)}")
    visible = DISCLOSABLE_ONLY.intersection(claims)
    if visible:
        raise ValueError(f"claims that must be selectively disclosable: {sorted(visible)}")
    disclosures = [make_disclosure(name, value) for name, value in disclosable.items()]
    payload = dict(claims)
    # Sorted, so the order of the digests does not reveal the order of the attributes.
    payload["_sd"] = sorted(_digest(d) for d in disclosures)
    payload["_sd_alg"] = SD_ALG
    header = {"alg": "ES256", "typ": TYP, "kid": kid}
    jwt = sign_compact(header, payload, key)
    return jwt + "~" + "".join(d + "~" for d in disclosures)


@dataclass(frozen=True)
class VerifiedCredential:
    """The result of verifying an SD-JWT VC."""

    header: dict[str, Any]
    payload: dict[str, Any]
    disclosed: dict[str, Any]

    @property
    def claims(self) -> dict[str, Any]:
        """Every visible claim: the payload without SD-JWT plumbing, plus disclosed ones."""
        visible = {k: v for k, v in self.payload.items() if k not in ("_sd", "_sd_alg")}
        visible.update(self.disclosed)
        return visible


def split(sd_jwt: str) -> tuple[str, list[str]]:
    """Split ``jwt~d1~...~`` into the JWT and the disclosures (a key binding JWT is refused)."""
    parts = sd_jwt.split("~")
    if len(parts) < 2 or parts[-1] != "":
        raise SdJwtError("an SD-JWT without key binding ends with '~'")
    return parts[0], [p for p in parts[1:-1]]


def decode_disclosure(disclosure: str) -> tuple[str, Any]:
    try:
        decoded = orjson.loads(b64url_decode(disclosure))
    except orjson.JSONDecodeError as exc:
        raise SdJwtError("a disclosure is not JSON") from exc
    if not (isinstance(decoded, list) and len(decoded) == 3 and isinstance(decoded[1], str)):
        raise SdJwtError("an object-property disclosure is [salt, name, value]")
    return decoded[1], decoded[2]


def verify(sd_jwt: str, jwks: list[dict[str, Any]]) -> VerifiedCredential:
    """Verify the issuer signature against ``jwks`` and every disclosure against ``_sd``.

    Raises:
        SdJwtError / JoseError: bad signature, unknown kid, a disclosure whose digest the JWT
            does not list, duplicate disclosures or claims.
    """
    jwt, disclosures = split(sd_jwt)
    header, payload = verify_compact(jwt, jwks, typ=TYP)
    if payload.get("_sd_alg", SD_ALG) != SD_ALG:
        raise SdJwtError("only _sd_alg sha-256 is supported")
    digests = payload.get("_sd", [])
    if not isinstance(digests, list):
        raise SdJwtError("_sd must be an array")
    allowed = set(digests)
    disclosed: dict[str, Any] = {}
    seen: set[str] = set()
    for disclosure in disclosures:
        digest = _digest(disclosure)
        if digest not in allowed:
            raise SdJwtError("a disclosure is not referenced by the JWT")
        if digest in seen:
            raise SdJwtError("a disclosure is repeated")
        seen.add(digest)
        name, value = decode_disclosure(disclosure)
        if name in payload or name in disclosed or name in ("_sd", "..."):
            raise SdJwtError("a disclosed claim name clashes with another claim")
        disclosed[name] = value
    return VerifiedCredential(header=header, payload=payload, disclosed=disclosed)
