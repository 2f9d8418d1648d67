from credbatch.signing.jose import thumbprint


def test_thumbprint_matches_rfc7638_example_shape() -> None:
    # RFC 7638 section 3.1 uses an RSA key; for EC we check against a value computed by
    # hand from the canonical JSON {"crv","kty","x","y"} (independent of member order).
    jwk = {"kty": "EC", "crv": "P-256", "x": "abc", "y": "def", "kid": "ignored"}
    import base64
    import hashlib

    canonical = b'{"crv":"P-256","kty":"EC","x":"abc","y":"def"}'
    expected = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=")
    assert thumbprint(jwk) == expected.decode()
