"""Token verification: pinned algorithm, issuer, audience, expiry; claims → caller."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from credbatch.auth.tokens import TokenVerifier, mint_dev_token
from credbatch.config import ConfigError, Settings, load_settings
from credbatch.errors import Unauthenticated

TENANT = uuid.UUID("11111111-2222-3333-4444-555555555555")


@pytest.fixture
def dev() -> Settings:
    return Settings(kek=None, jwt_secret="s" * 64)


async def test_default_dev_secret_round_trips() -> None:
    settings = Settings(kek=None)
    token = mint_dev_token(settings, tenant=TENANT, sub="svc", roles=["service"])
    assert (await TokenVerifier(settings).verify(token)).roles == {"service"}


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "credbatch-dev",
        "aud": "credbatch",
        "sub": "alice",
        "tenant": str(TENANT),
        "roles": ["issuer"],
        "iat": now,
        "exp": now + 60,
    }
    claims.update(overrides)
    return claims


async def test_dev_token_maps_to_caller(dev: Settings) -> None:
    token = mint_dev_token(
        dev, tenant=TENANT, sub="alice", roles=["issuer", "observer"], departments=["hr"]
    )
    caller = await TokenVerifier(dev).verify(token)
    assert caller.tenant_id == TENANT
    assert caller.user_id == "alice"
    assert caller.roles == {"issuer", "observer"}
    assert caller.departments == ("hr",)


async def test_no_or_empty_departments_claim_means_no_department(dev: Settings) -> None:
    verifier = TokenVerifier(dev)
    caller = await verifier.verify(jwt.encode(_claims(), dev.jwt_secret or ""))
    assert caller.departments == ()
    empty = await verifier.verify(jwt.encode(_claims(departments=[]), dev.jwt_secret or ""))
    assert empty.departments == ()


async def test_token_lifetime_is_bounded(dev: Settings) -> None:
    verifier = TokenVerifier(dev.with_overrides(jwt_max_lifetime=3600.0))
    now = int(time.time())
    secret = dev.jwt_secret or ""
    ok = jwt.encode(_claims(iat=now, exp=now + 3600), secret)
    assert (await verifier.verify(ok)).user_id == "alice"
    for claims in (
        _claims(iat=now, exp=now + 3601),
        # An old iat does not help: the lifetime is exp - iat, not what is left of it.
        _claims(iat=now - 7200, exp=now + 60),
    ):
        with pytest.raises(Unauthenticated) as caught:
            await verifier.verify(jwt.encode(claims, secret))
        assert caught.value.reason == "TOKEN_LIFETIME_TOO_LONG"
    without_iat = _claims(exp=now + 3500)
    del without_iat["iat"]
    assert (await verifier.verify(jwt.encode(without_iat, secret))).user_id == "alice"
    without_iat["exp"] = now + 4000
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(jwt.encode(without_iat, secret))
    assert caught.value.reason == "TOKEN_LIFETIME_TOO_LONG"


class _Decodes:
    """Counts full verifications (jwt.decode calls) while the test runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = jwt.decode

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(jwt, "decode", counting)


async def test_a_token_is_verified_once_until_it_expires(
    dev: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    decodes = _Decodes(monkeypatch)
    wall = [time.time()]
    verifier = TokenVerifier(dev, wall_clock=lambda: wall[0])
    now = int(wall[0])
    token = jwt.encode(_claims(iat=now, exp=now + 60), dev.jwt_secret or "")
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first
    assert decodes.calls == 1
    # Another token of the same caller is another entry.
    other = jwt.encode(_claims(iat=now - 1, exp=now + 60), dev.jwt_secret or "")
    assert (await verifier.verify(other)).user_id == "alice"
    assert decodes.calls == 2
    # At its exp the entry is no longer used: the token is verified again (and accepted by
    # jwt's own clock here, which has not reached exp).
    wall[0] = now + 60
    assert (await verifier.verify(token)).user_id == "alice"
    assert decodes.calls == 3


async def test_a_kept_token_changed_by_one_byte_is_verified_and_refused(dev: Settings) -> None:
    verifier = TokenVerifier(dev)
    token = jwt.encode(_claims(), dev.jwt_secret or "")
    assert (await verifier.verify(token)).user_id == "alice"
    head, payload, signature = token.split(".")
    forged_payload = jwt.utils.base64url_encode(
        json.dumps(_claims(sub="mallory")).encode()
    ).decode()
    changed = "A" if signature[0] != "A" else "B"
    for forged in (
        f"{head}.{payload}.{changed}{signature[1:]}",
        f"{head}.{forged_payload}.{signature}",
    ):
        with pytest.raises(Unauthenticated) as caught:
            await verifier.verify(forged)
        assert caught.value.reason == "INVALID_TOKEN"


async def test_a_token_past_exp_is_never_kept(dev: Settings) -> None:
    verifier = TokenVerifier(dev)
    now = int(time.time())
    # Past exp but within jwt's leeway: accepted, and not kept for the next call.
    token = jwt.encode(_claims(iat=now - 30, exp=now - 2), dev.jwt_secret or "")
    assert (await verifier.verify(token)).user_id == "alice"
    assert len(verifier._verified) == 0


async def test_unknown_roles_are_dropped(dev: Settings) -> None:
    token = jwt.encode(_claims(roles=["root", "observer"]), dev.jwt_secret or "")
    assert (await TokenVerifier(dev).verify(token)).roles == {"observer"}


@pytest.mark.parametrize(
    ("token_of", "reason"),
    [
        (lambda s: jwt.encode(_claims(), "another-secret-" * 5), "INVALID_TOKEN"),
        (lambda s: jwt.encode(_claims(iss="someone-else"), s), "INVALID_TOKEN"),
        (lambda s: jwt.encode(_claims(aud="other"), s), "INVALID_TOKEN"),
        (lambda s: jwt.encode(_claims(exp=int(time.time()) - 60), s), "TOKEN_EXPIRED"),
        (lambda s: jwt.encode(_claims(tenant="acme"), s), "INVALID_TOKEN"),
        (
            lambda s: jwt.encode({k: v for k, v in _claims().items() if k != "exp"}, s),
            "INVALID_TOKEN",
        ),
        (lambda s: jwt.encode(_claims(), s * 2, algorithm="HS512"), "INVALID_TOKEN"),
        (lambda s: jwt.encode(_claims(), None, algorithm="none"), "INVALID_TOKEN"),  # type: ignore[arg-type]
        (lambda s: "not.a.token", "INVALID_TOKEN"),
    ],
    ids=[
        "bad-signature",
        "issuer",
        "audience",
        "expired",
        "tenant",
        "no-exp",
        "alg-hs512",
        "alg-none",
        "garbage",
    ],
)
async def test_refused_tokens(dev: Settings, token_of: Any, reason: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        await TokenVerifier(dev).verify(token_of(dev.jwt_secret))
    assert caught.value.reason == reason


async def test_jwks_file_rs256(tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwk["kid"] = "k1"
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    settings = load_settings(
        {"CREDBATCH_JWKS_URL": str(path), "CREDBATCH_KEK_FILE": str(tmp_path / "kek")}
    )
    assert settings.jwt_algorithm == "RS256" and settings.jwt_secret is None
    verifier = TokenVerifier(settings)
    good = jwt.encode(_claims(), private, algorithm="RS256", headers={"kid": "k1"})
    assert (await verifier.verify(good)).user_id == "alice"
    unknown_kid = jwt.encode(_claims(), private, algorithm="RS256", headers={"kid": "k2"})
    with pytest.raises(Unauthenticated):
        await verifier.verify(unknown_kid)
    # An HS256 token "signed" with the public key must never pass (algorithm confusion).
    with pytest.raises(Unauthenticated):
        await verifier.verify(jwt.encode(_claims(), "x" * 32, algorithm="HS256"))


def test_production_refuses_dev_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="development secret"):
        load_settings({"CREDBATCH_MODE": "production", "CREDBATCH_KEK": "x"})
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        load_settings({"CREDBATCH_MODE": "production", "CREDBATCH_JWT_SECRET": "short"})
    with pytest.raises(ConfigError, match="development secret"):
        load_settings(
            {"CREDBATCH_MODE": "production", "CREDBATCH_JWT_SECRET": "credbatch-dev-secret"}
        )
    prod = load_settings({"CREDBATCH_MODE": "production", "CREDBATCH_JWT_SECRET": "s" * 40})
    assert not prod.development
    with pytest.raises(ConfigError, match="CREDBATCH_KEK"):
        prod.kek_bytes()
