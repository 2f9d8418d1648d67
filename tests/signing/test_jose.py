from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from credbatch.signing.jose import JoseError, b64url, public_jwk, public_key_from_jwk, thumbprint

_JWK = public_jwk(ec.generate_private_key(ec.SECP256R1()).public_key())


def test_thumbprint_matches_rfc7638_example_shape() -> None:
    # RFC 7638 section 3.1 uses an RSA key; for EC we check against a value computed by
    # hand from the canonical JSON {"crv","kty","x","y"} (independent of member order).
    jwk = {"kty": "EC", "crv": "P-256", "x": "abc", "y": "def", "kid": "ignored"}
    import base64
    import hashlib

    canonical = b'{"crv":"P-256","kty":"EC","x":"abc","y":"def"}'
    expected = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=")
    assert thumbprint(jwk) == expected.decode()


def test_a_p256_jwk_round_trips() -> None:
    assert public_jwk(public_key_from_jwk(_JWK)) == _JWK


@pytest.mark.parametrize(
    ("jwk", "problem"),
    [
        ({k: v for k, v in _JWK.items() if k != "x"}, "no x coordinate"),
        ({k: v for k, v in _JWK.items() if k != "y"}, "no y coordinate"),
        ({**_JWK, "x": 7}, "no x coordinate"),
        ({**_JWK, "y": None}, "no y coordinate"),
        ({**_JWK, "x": b64url(bytes(31))}, "x coordinate is not 32 bytes"),
        ({**_JWK, "y": "!!!"}, "y coordinate is not 32 bytes"),
        ({**_JWK, "x": b64url(bytes(32))}, "not a point on P-256"),
        ({**_JWK, "crv": "P-384"}, "only EC P-256"),
    ],
)
def test_a_malformed_jwk_is_a_jose_error_naming_the_problem(
    jwk: dict[str, Any], problem: str
) -> None:
    with pytest.raises(JoseError, match=problem):
        public_key_from_jwk(jwk)
