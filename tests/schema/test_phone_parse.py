"""The shortcut for ``+`` and digits parses every input as ``phonenumbers.parse`` does: the
same number, or the same refusal."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from credbatch.schema.phone_parse import parse_number

REGIONS = ["US", "GB", "DE", "IT", "BR"]
# Every calling code, a few no region uses, and a leading zero.
CODES = [str(code) for code in COUNTRY_CODE_TO_REGION_CODE] + ["0", "999", "292", "28"]


def _outcome(parse: object, raw: str, region: str) -> object:
    try:
        return parse(raw, region)  # type: ignore[operator]
    except phonenumbers.NumberParseException as refused:
        return ("refused", refused.error_type, str(refused))


def _same(raw: str, region: str) -> None:
    assert _outcome(parse_number, raw, region) == _outcome(phonenumbers.parse, raw, region), raw


def test_random_numbers_of_every_calling_code() -> None:
    chance = random.Random(612)
    for _ in range(30_000):
        code = chance.choice(CODES)
        # Lengths from too short to too long; leading zeros and national prefixes included.
        national = "".join(chance.choice("0123456789") for _ in range(chance.randint(0, 19)))
        if chance.random() < 0.15:
            national = chance.choice(["0", "00", "1", "8", "80"]) + national
        _same(f"+{code}{national}", chance.choice(REGIONS))


@pytest.mark.parametrize(
    "raw",
    [
        "+14155552671",  # US
        "+442079460000",  # GB
        "+4402079460000",  # GB with its national prefix kept after the code
        "+390612345678",  # Italy: a leading zero kept
        "+3900612345678",
        "+79123456789",  # Russia, shares +7
        "+5511987654321",  # Brazil
        "+800123456789",  # international freephone, no region
        "+0123456789",  # no calling code starts with 0
        "+99912345678",  # a code no region uses
        "+1",
        "+12",
        "+123",
        "+12345678901234567890",  # too long
        "+1 415 555 2671",  # not the shortcut's form: parse's own path
        "+1-415-555-2671 ext. 7",
        "+１４１５５５５２６７１",  # full-width digits
        "tel:+1-415-555-2671",
        "4155552671",
        "",
    ],
)
def test_numbers_in_and_out_of_the_shortcuts_form(raw: str) -> None:
    for region in REGIONS:
        _same(raw, region)


@settings(max_examples=3_000, deadline=None)
@given(
    st.sampled_from(CODES), st.text(alphabet="0123456789", max_size=19), st.sampled_from(REGIONS)
)
def test_any_digits_after_a_plus(code: str, national: str, region: str) -> None:
    _same(f"+{code}{national}", region)
