"""VERP envelope senders: one per send of a record's invitation, unforgeable, within RFC 5321's
local-part limit."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credbatch.bounce_settings import bounce_identity, bounce_settings
from credbatch.config import ConfigError, Settings
from credbatch.delivery import verp

KEY = b"k" * 32
DOMAIN = "bounces.example"


@given(st.uuids(), st.integers(0, verp.MAX_SEND))
def test_each_send_gets_its_own_address_back(record_id: uuid.UUID, number: int) -> None:
    address = verp.address(KEY, DOMAIN, record_id, number)
    local = address.partition("@")[0]
    assert len(local) <= 64
    assert verp.send_of(KEY, DOMAIN, address) == verp.Send(record_id, number)
    # Mail systems may change the case of an address, or wrap it in brackets.
    assert verp.send_of(KEY, DOMAIN, f"<{address.upper()}>") == verp.Send(record_id, number)


@given(st.uuids(), st.uuids())
def test_a_token_does_not_name_another_record(mine: uuid.UUID, other: uuid.UUID) -> None:
    token = verp.token(KEY, mine)
    # The other record's id with this record's send and MAC: refused unless the same record.
    spliced = f"{verp.PREFIX}{verp.token(KEY, other)[:26]}{token[26:]}@{DOMAIN}"
    assert verp.send_of(KEY, DOMAIN, spliced) == (verp.Send(mine, 0) if mine == other else None)


@given(st.uuids(), st.integers(0, 1000), st.integers(0, 1000))
def test_a_token_does_not_name_another_send(record_id: uuid.UUID, mine: int, other: int) -> None:
    # The send number (bytes 16-19, characters 26-32) of another send, this one's MAC.
    token = verp.token(KEY, record_id, mine)
    spliced = token[:25] + verp.token(KEY, record_id, other)[25:32] + token[32:]
    expected = verp.Send(record_id, mine) if mine == other else None
    assert verp.send_of(KEY, DOMAIN, f"{verp.PREFIX}{spliced}@{DOMAIN}") == expected


def test_tokens_of_the_first_format_name_send_zero() -> None:
    # Invitations already out when send numbers came: id and MAC (v1 context), 45 characters.
    record_id = uuid.uuid4()
    tag = hmac.new(KEY, b"credbatch verp v1\x00" + record_id.bytes, hashlib.sha256).digest()
    v1 = base64.b32encode(record_id.bytes + tag[:12]).decode().rstrip("=").lower()
    assert len(v1) == 45
    assert verp.send_of(KEY, DOMAIN, f"bounce+{v1}@{DOMAIN}") == verp.Send(record_id, 0)
    assert verp.send_of(b"x" * 32, DOMAIN, f"bounce+{v1}@{DOMAIN}") is None


def test_addresses_that_are_not_ours() -> None:
    record_id = uuid.uuid4()
    address = verp.address(KEY, DOMAIN, record_id, 3)
    assert verp.send_of(b"x" * 32, DOMAIN, address) is None  # another key
    assert verp.send_of(KEY, "other.example", address) is None
    assert verp.send_of(KEY, DOMAIN, address.replace("bounce+", "bounces+")) is None
    assert verp.send_of(KEY, DOMAIN, f"bounce+{'!' * 52}@{DOMAIN}") is None
    assert verp.send_of(KEY, DOMAIN, f"bounce+{'!' * 45}@{DOMAIN}") is None
    assert verp.send_of(KEY, DOMAIN, f"bounce+short@{DOMAIN}") is None
    assert verp.send_of(KEY, DOMAIN, "no-at-sign") is None
    with pytest.raises(ValueError, match="send number"):
        verp.token(KEY, record_id, -1)


def test_a_bounce_domain_needs_a_strong_key_where_mail_is_addressed() -> None:
    # Shared configuration may name the domain; only who addresses or receives needs the key.
    read = bounce_settings({"CREDBATCH_BOUNCE_DOMAIN": DOMAIN}, Settings())
    with pytest.raises(ConfigError, match="CREDBATCH_BOUNCE_KEY"):
        bounce_identity(Settings().with_overrides(**read))
    assert bounce_identity(Settings()) is None
    with pytest.raises(ConfigError, match="CREDBATCH_BOUNCE_KEY"):
        bounce_settings(
            {"CREDBATCH_BOUNCE_DOMAIN": DOMAIN, "CREDBATCH_BOUNCE_KEY": "short"}, Settings()
        )
    with pytest.raises(ConfigError, match="CREDBATCH_BOUNCE_DOMAIN"):
        bounce_settings(
            {"CREDBATCH_BOUNCE_DOMAIN": "bad domain", "CREDBATCH_BOUNCE_KEY": "k" * 32}, Settings()
        )
    read = bounce_settings(
        {"CREDBATCH_BOUNCE_DOMAIN": "Bounces.Example", "CREDBATCH_BOUNCE_KEY": "k" * 32},
        Settings(),
    )
    assert (read["bounce_domain"], read["bounce_port"]) == (DOMAIN, 2525)
    assert bounce_settings({}, Settings())["bounce_domain"] is None
