"""credbatch.auth.verified: entries until their token expires, bounded, by digest."""

from __future__ import annotations

import uuid

import pytest

from credbatch.auth.verified import VerifiedToken, VerifiedTokens, token_digest
from credbatch.tenancy import service_scope

CALLER = service_scope(uuid.uuid4())


def _entry(expires: float) -> VerifiedToken:
    return VerifiedToken(CALLER, expires, "k1", object())


def test_an_entry_is_used_only_before_its_token_expires() -> None:
    tokens = VerifiedTokens()
    entry = _entry(expires=100.0)
    tokens.put(b"a", entry, now=10.0)
    assert tokens.get(b"a", now=99.9) is entry
    assert tokens.get(b"a", now=100.0) is None  # at exp: no longer, not even once
    assert len(tokens) == 0  # and it is gone
    assert tokens.get(b"a", now=50.0) is None


def test_an_expired_token_is_not_kept() -> None:
    tokens = VerifiedTokens()
    tokens.put(b"a", _entry(expires=100.0), now=100.0)
    tokens.put(b"b", _entry(expires=100.0), now=130.0)
    assert len(tokens) == 0


def test_the_oldest_entry_goes_when_full() -> None:
    tokens = VerifiedTokens(capacity=2)
    first, second, third = _entry(1000.0), _entry(1000.0), _entry(1000.0)
    tokens.put(b"a", first, now=0.0)
    tokens.put(b"b", second, now=0.0)
    tokens.put(b"c", third, now=0.0)
    assert len(tokens) == 2
    assert tokens.get(b"a", now=1.0) is None
    assert tokens.get(b"b", now=1.0) is second
    assert tokens.get(b"c", now=1.0) is third
    tokens.put(b"b", first, now=2.0)  # a token kept again replaces its entry, never grows
    assert len(tokens) == 2 and tokens.get(b"b", now=3.0) is first
    tokens.forget(b"b")
    assert tokens.get(b"b", now=3.0) is None
    with pytest.raises(ValueError):
        VerifiedTokens(capacity=0)


def test_the_digest_is_of_the_whole_token() -> None:
    assert token_digest("h.p.s1") != token_digest("h.p.s2")
    assert token_digest("h.p.s1") == token_digest("h.p.s1")
    assert len(token_digest("x")) == 32
