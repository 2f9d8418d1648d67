"""Minimal JOSE helpers for ES256 (P-256): base64url, JWK, RFC 7638 thumbprints, compact JWS.

Hand-rolled rather than PyJWT because issuance signs every credential on the worker's hot
path: orjson (faster than the standard json module) and a direct ECDSA call keep the
per-credential overhead small.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

ALG = "ES256"
_COORD = 32


class JoseError(Exception):
    """A token or key is malformed or its signature does not verify."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise JoseError("invalid base64url") from exc


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The public JWK (kty, crv, x, y) of a P-256 key."""
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(_COORD, "big")),
        "y": b64url(numbers.y.to_bytes(_COORD, "big")),
    }


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256) of an EC key: required members, sorted, no spaces."""
    canonical = orjson.dumps(
        {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]},
        option=orjson.OPT_SORT_KEYS,
    )
    return b64url(hashlib.sha256(canonical).digest())


def _coordinate(jwk: dict[str, Any], name: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise JoseError(f"the JWK has no {name} coordinate (a base64url string)")
    raw = b64url_decode(value)
    if len(raw) != _COORD:
        raise JoseError(f"the JWK's {name} coordinate is not {_COORD} bytes")
    return int.from_bytes(raw, "big")


def public_key_from_jwk(jwk: dict[str, Any]) -> ec.EllipticCurvePublicKey:
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise JoseError("only EC P-256 keys are supported")
    # A wallet's proof header brings this JWK: a missing or malformed coordinate is its
    # mistake (JoseError, then invalid_proof), never a KeyError.
    x = _coordinate(jwk, "x")
    y = _coordinate(jwk, "y")
    try:
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except ValueError as exc:
        raise JoseError("the JWK is not a point on P-256") from exc


def sign_compact(
    header: dict[str, Any], payload: dict[str, Any], key: ec.EllipticCurvePrivateKey
) -> str:
    """A compact JWS (header.payload.signature) signed ES256 with ``key``."""
    signing_input = (b64url(orjson.dumps(header)) + "." + b64url(orjson.dumps(payload))).encode(
        "ascii"
    )
    der = key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(_COORD, "big") + s.to_bytes(_COORD, "big")
    return signing_input.decode("ascii") + "." + b64url(signature)


def parse_compact(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Split a compact JWS into (header, payload, signing input, raw signature)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise JoseError("a compact JWS has three parts")
    try:
        header = orjson.loads(b64url_decode(parts[0]))
        payload = orjson.loads(b64url_decode(parts[1]))
    except orjson.JSONDecodeError as exc:
        raise JoseError("header or payload is not JSON") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise JoseError("header and payload must be JSON objects")
    return header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), b64url_decode(parts[2])


def verify_signature(
    signing_input: bytes, signature: bytes, key: ec.EllipticCurvePublicKey
) -> None:
    """Check a raw (r || s) ES256 signature; raises JoseError when it does not verify."""
    if len(signature) != 2 * _COORD:
        raise JoseError("an ES256 signature is 64 bytes")
    der = encode_dss_signature(
        int.from_bytes(signature[:_COORD], "big"), int.from_bytes(signature[_COORD:], "big")
    )
    try:
        key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise JoseError("signature does not verify") from None


def verify_compact(
    token: str, jwks: list[dict[str, Any]], *, typ: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a compact JWS against a JWKS (key chosen by ``kid``); returns (header, payload)."""
    header, payload, signing_input, signature = parse_compact(token)
    if header.get("alg") != ALG:
        raise JoseError(f"alg must be {ALG}")
    if header.get("typ") != typ:
        raise JoseError(f"typ must be {typ}")
    kid = header.get("kid")
    matches = [jwk for jwk in jwks if jwk.get("kid") == kid]
    if not matches:
        raise JoseError("no published key has the token's kid")
    verify_signature(signing_input, signature, public_key_from_jwk(matches[0]))
    return header, payload
