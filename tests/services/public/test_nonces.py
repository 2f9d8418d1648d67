"""Stateless c_nonces: the MAC binds issuer key and tenant, the time bounds the lifetime."""

from __future__ import annotations

import base64
import uuid

import pytest

from services.public.nonces import MAX_SKEW_SECONDS, TTL_SECONDS, Nonces

KEY = b"k" * 32
NOW = 1_800_000_000.0
TENANT = uuid.UUID("7a1f0c4e-0000-4000-8000-000000000001")


def test_a_nonce_checks_for_its_tenant_until_it_expires() -> None:
    nonces = Nonces(KEY)
    nonce = nonces.issue(TENANT, NOW)
    checked = nonces.check(TENANT, nonce, NOW + TTL_SECONDS - 1)
    assert checked is not None and checked.expires_at == int(NOW) + TTL_SECONDS
    assert nonces.check(TENANT, nonce, NOW + TTL_SECONDS) is None
    assert nonces.check(uuid.uuid4(), nonce, NOW) is None
    assert Nonces(b"o" * 32).check(TENANT, nonce, NOW) is None
    assert nonces.issue(TENANT, NOW) != nonce


def test_a_nonce_from_the_future_beyond_the_skew_is_refused() -> None:
    nonces = Nonces(KEY)
    assert nonces.check(TENANT, nonces.issue(TENANT, NOW + MAX_SKEW_SECONDS), NOW) is not None
    assert nonces.check(TENANT, nonces.issue(TENANT, NOW + MAX_SKEW_SECONDS + 1), NOW) is None


@pytest.mark.parametrize("nonce", ["", "x", "!" * 80, "A" * 10_000])
def test_malformed_nonces_are_refused(nonce: str) -> None:
    assert Nonces(KEY).check(TENANT, nonce, NOW) is None


def test_any_changed_byte_is_refused() -> None:
    nonces = Nonces(KEY)
    raw = bytearray(base64.urlsafe_b64decode(nonces.issue(TENANT, NOW) + "=="))
    for i in range(len(raw)):
        tampered = bytearray(raw)
        tampered[i] ^= 1
        forged = base64.urlsafe_b64encode(bytes(tampered)).rstrip(b"=").decode()
        assert nonces.check(TENANT, forged, NOW) is None, i


def test_two_spellings_of_one_nonce_share_their_digest() -> None:
    # base64 decoding ignores padding bits, so spent nonces are keyed on the decoded bytes.
    nonces = Nonces(KEY)
    nonce = nonces.issue(TENANT, NOW)
    first = nonces.check(TENANT, nonce, NOW)
    padded = nonces.check(TENANT, nonce + "=", NOW)
    assert first is not None and padded is not None and first.digest == padded.digest


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Nonces(b"k" * 31)
