"""Sealed webhook secrets: they open only under their key, for their tenant, endpoint and id."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace

import pytest

from credbatch.signing.kek import kek_id
from credbatch.webhooks.sealing import SecretBox, SecretUnsealError


def test_a_new_secret_opens_again_and_its_ciphertext_shows_nothing_of_it() -> None:
    key = os.urandom(32)
    box = SecretBox(key)
    tenant, endpoint = uuid.uuid4(), uuid.uuid4()
    new = box.new(tenant, endpoint)
    assert new.secret.startswith("whsec_")
    assert new.sealed.kek_id == kek_id(key) == box.kek_id
    assert b"whsec_" not in new.sealed.ciphertext
    assert new.secret[6:].encode() not in new.sealed.ciphertext
    assert box.open(tenant, endpoint, new.id, new.sealed) == new.secret
    # Sealed twice, never the same bytes.
    assert box.seal(tenant, endpoint, new.id, new.secret).ciphertext != new.sealed.ciphertext


def test_a_secret_moved_to_another_row_does_not_open() -> None:
    box = SecretBox(os.urandom(32))
    tenant, endpoint = uuid.uuid4(), uuid.uuid4()
    new = box.new(tenant, endpoint)
    for elsewhere in (
        (uuid.uuid4(), endpoint, new.id),
        (tenant, uuid.uuid4(), new.id),
        (tenant, endpoint, uuid.uuid4()),
    ):
        with pytest.raises(SecretUnsealError, match="does not open"):
            box.open(*elsewhere, new.sealed)


def test_another_key_is_named_and_tampering_is_refused() -> None:
    old, new_key = os.urandom(32), os.urandom(32)
    tenant, endpoint = uuid.uuid4(), uuid.uuid4()
    new = SecretBox(old).new(tenant, endpoint)
    with pytest.raises(SecretUnsealError) as refused:
        SecretBox(new_key).open(tenant, endpoint, new.id, new.sealed)
    assert kek_id(old) in str(refused.value) and kek_id(new_key) in str(refused.value)
    flipped = bytes([new.sealed.ciphertext[0] ^ 1]) + new.sealed.ciphertext[1:]
    with pytest.raises(SecretUnsealError):
        SecretBox(old).open(tenant, endpoint, new.id, replace(new.sealed, ciphertext=flipped))
    with pytest.raises(ValueError, match="32 bytes"):
        SecretBox(b"short")
