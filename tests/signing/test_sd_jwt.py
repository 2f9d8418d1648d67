import base64
import hashlib

import orjson
import pytest

from credbatch.signing.jose import JoseError, b64url, b64url_decode
from credbatch.signing.keys import new_key
from credbatch.signing.sd_jwt import issue, split, verify


def _issue() -> tuple[str, list[dict[str, str]]]:
    key, jwk, kid = new_key()
    token = issue(
        key=key,
        kid=kid,
        claims={"iss": "https://issuer", "vct": "https://issuer/vct", "iat": 1},
        disclosable={"name": "Ada", "age": 36, "member": True, "born": "1815-12-10"},
    )
    return token, [{**jwk, "kid": kid}]


def test_issued_credential_verifies_and_discloses_typed_values() -> None:
    token, jwks = _issue()
    jwt, disclosures = split(token)
    header = orjson.loads(b64url_decode(jwt.split(".")[0]))
    assert header == {"alg": "ES256", "typ": "dc+sd-jwt", "kid": jwks[0]["kid"]}
    payload = orjson.loads(b64url_decode(jwt.split(".")[1]))
    assert payload["_sd_alg"] == "sha-256"
    assert "name" not in payload
    # Each digest is base64url(sha-256(ascii disclosure)).
    for disclosure in disclosures:
        digest = b64url(hashlib.sha256(disclosure.encode()).digest())
        assert digest in payload["_sd"]
        salt, _, _ = orjson.loads(base64.urlsafe_b64decode(disclosure + "=="))
        assert len(b64url_decode(salt)) >= 16
    verified = verify(token, jwks)
    assert verified.disclosed == {"name": "Ada", "age": 36, "member": True, "born": "1815-12-10"}
    assert verified.claims["iss"] == "https://issuer"


def test_tampered_disclosure_or_signature_is_refused() -> None:
    token, jwks = _issue()
    jwt, _disclosures = split(token)
    forged = b64url(orjson.dumps(["salt", "name", "Eve"]))
    with pytest.raises(JoseError):
        verify(jwt + "~" + forged + "~", jwks)
    head, _body, sig = jwt.split(".")
    other = b64url(orjson.dumps({"iss": "x", "_sd": []}))
    with pytest.raises(JoseError):
        verify(f"{head}.{other}.{sig}~", jwks)
    _, other_jwks = _issue()
    with pytest.raises(JoseError):
        verify(token, [{**other_jwks[0], "kid": jwks[0]["kid"]}])


def test_reserved_names_cannot_be_disclosable() -> None:
    key, _, kid = new_key()
    with pytest.raises(ValueError, match="reserved"):
        issue(key=key, kid=kid, claims={}, disclosable={"iss": "x"})


def test_cred_url_is_issued_only_as_a_disclosure() -> None:
    key, jwk, kid = new_key()
    link = "https://issuer/c/abc"
    with pytest.raises(ValueError, match="selectively disclosable: \\['Cred_URL'\\]"):
        issue(key=key, kid=kid, claims={"iss": "https://issuer", "Cred_URL": link}, disclosable={})
    token = issue(
        key=key, kid=kid, claims={"iss": "https://issuer"}, disclosable={"Cred_URL": link}
    )
    jwt, _ = split(token)
    assert link not in b64url_decode(jwt.split(".")[1]).decode()
    jwks = [{**jwk, "kid": kid}]
    assert verify(token, jwks).disclosed == {"Cred_URL": link}
    # Presented without its disclosure, the credential still verifies and names no link.
    bare = verify(jwt + "~", jwks)
    assert "Cred_URL" not in bare.claims
