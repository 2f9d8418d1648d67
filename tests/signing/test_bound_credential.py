"""A holder-bound copy keeps what is visible visible and what is disclosable disclosable."""

from __future__ import annotations

import hashlib

import orjson

from credbatch.signing.bound_credential import bind
from credbatch.signing.jose import b64url, b64url_decode, sign_compact
from credbatch.signing.keys import new_key
from credbatch.signing.sd_jwt import TYP, issue, make_disclosure, split, verify

LINK = "https://issuer/c/abc"
VISIBLE = {"iss": "https://issuer", "vct": "https://issuer/vct", "iat": 1, "exp": 99}


def _payload(token: str) -> dict[str, object]:
    jwt, _ = split(token)
    payload: dict[str, object] = orjson.loads(b64url_decode(jwt.split(".")[1]))
    return payload


def test_the_bound_copy_keeps_visible_and_disclosable_claims_and_adds_cnf() -> None:
    key, jwk, kid = new_key()
    _, holder, _ = new_key()
    stored = issue(key=key, kid=kid, claims=VISIBLE, disclosable={"name": "Ada", "Cred_URL": LINK})
    bound = bind(stored, holder, key=key, kid=kid, issued_at=7)
    verified = verify(bound, [{**jwk, "kid": kid}])
    assert verified.disclosed == {"name": "Ada", "Cred_URL": LINK}
    payload = _payload(bound)
    assert {k: payload[k] for k in ("iss", "vct", "exp")} == {
        k: VISIBLE[k] for k in ("iss", "vct", "exp")
    }
    assert payload["iat"] == 7 and payload["cnf"] == {"jwk": holder}
    assert "Cred_URL" not in payload


def test_a_credential_stored_with_a_visible_cred_url_is_bound_with_it_disclosable() -> None:
    # As the worker stored credentials before Cred_URL became disclosable.
    key, jwk, kid = new_key()
    _, holder, _ = new_key()
    name = make_disclosure("name", "Ada")
    digest = b64url(hashlib.sha256(name.encode("ascii")).digest())
    legacy_payload = {**VISIBLE, "Cred_URL": LINK, "_sd": [digest], "_sd_alg": "sha-256"}
    jwt = sign_compact({"alg": "ES256", "typ": TYP, "kid": kid}, legacy_payload, key)
    stored = f"{jwt}~{name}~"
    assert verify(stored, [{**jwk, "kid": kid}]).payload["Cred_URL"] == LINK

    bound = bind(stored, holder, key=key, kid=kid, issued_at=7)
    assert "Cred_URL" not in _payload(bound)
    bound_jwt, _ = split(bound)
    assert LINK not in b64url_decode(bound_jwt.split(".")[1]).decode()
    assert verify(bound, [{**jwk, "kid": kid}]).disclosed == {"name": "Ada", "Cred_URL": LINK}
