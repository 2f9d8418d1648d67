"""Offer codes by generation: the first is the code offers always had, the next ones new."""

from __future__ import annotations

import uuid

import pytest

from credbatch.signing.offer_codes import OfferCodes, pre_authorized_code

KEK = b"offer-codes-tests-kek-32-bytes!!"
TENANT = uuid.uuid4()
RECORD = uuid.uuid4()
TOKEN = "claim-token"


def test_generation_zero_is_the_code_derived_without_one() -> None:
    codes = OfferCodes(KEK)
    assert codes.secrets(TENANT, RECORD, TOKEN) == codes.secrets(TENANT, RECORD, TOKEN, 0)
    assert pre_authorized_code(TENANT, TOKEN) == pre_authorized_code(TENANT, TOKEN, 0)


def test_each_generation_has_its_own_codes_and_keeps_them() -> None:
    codes = OfferCodes(KEK)
    secrets = [codes.secrets(TENANT, RECORD, TOKEN, g) for g in range(4)]
    assert len({s.pre_authorized_code for s in secrets}) == 4
    # Six digits may collide by chance (one in a million per pair); four in a row may not.
    assert len({s.tx_code for s in secrets}) > 1
    assert codes.secrets(TENANT, RECORD, TOKEN, 2) == secrets[2]


def test_a_negative_generation_is_refused() -> None:
    with pytest.raises(ValueError, match="never negative"):
        OfferCodes(KEK).secrets(TENANT, RECORD, TOKEN, -1)
