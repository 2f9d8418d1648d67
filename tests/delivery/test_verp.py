"""VERP envelope senders: one per record, unforgeable, within RFC 5321's local-part limit."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credbatch.bounce_settings import bounce_identity, bounce_settings
from credbatch.config import ConfigError, Settings
from credbatch.delivery import verp

KEY = b"k" * 32
DOMAIN = "bounces.example"


@given(st.uuids())
def test_each_record_gets_its_own_address_back(record_id: uuid.UUID) -> None:
    address = verp.address(KEY, DOMAIN, record_id)
    local = address.partition("@")[0]
    assert len(local) <= 64
    assert verp.record_of(KEY, DOMAIN, address) == record_id
    # Mail systems may change the case of an address, or wrap it in brackets.
    assert verp.record_of(KEY, DOMAIN, f"<{address.upper()}>") == record_id


@given(st.uuids(), st.uuids())
def test_a_token_does_not_name_another_record(mine: uuid.UUID, other: uuid.UUID) -> None:
    token = verp.token(KEY, mine)
    # The other record's id with this record's MAC: refused unless it is the same record.
    spliced = f"{verp.PREFIX}{verp.token(KEY, other)[:26]}{token[26:]}@{DOMAIN}"
    assert verp.record_of(KEY, DOMAIN, spliced) == (mine if mine == other else None)


def test_addresses_that_are_not_ours() -> None:
    record_id = uuid.uuid4()
    address = verp.address(KEY, DOMAIN, record_id)
    assert verp.record_of(b"x" * 32, DOMAIN, address) is None  # another key
    assert verp.record_of(KEY, "other.example", address) is None
    assert verp.record_of(KEY, DOMAIN, address.replace("bounce+", "bounces+")) is None
    assert verp.record_of(KEY, DOMAIN, f"bounce+{'!' * 45}@{DOMAIN}") is None
    assert verp.record_of(KEY, DOMAIN, f"bounce+short@{DOMAIN}") is None
    assert verp.record_of(KEY, DOMAIN, "no-at-sign") is None


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
