"""The one-walk validity check answers as ``phonenumbers.is_valid_number`` for every number."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credbatch.schema.phone_validity import is_valid

# Shared calling codes (several regions, some with leading digits), single-region ones, and
# one no region uses.
CALLING_CODES = [44, 1, 7, 47, 61, 262, 590, 599, 33, 49, 91, 353, 800, 979, 999]


def _numbers(count: int) -> list[phonenumbers.PhoneNumber]:
    chance = random.Random(2712)
    numbers = []
    for _ in range(count):
        code = chance.choice(CALLING_CODES)
        length = chance.randint(4, 14)
        national = chance.choice("123456789") + "".join(
            chance.choice("0123456789") for _ in range(length - 1)
        )
        numbers.append(phonenumbers.PhoneNumber(country_code=code, national_number=int(national)))
    return numbers


def test_random_numbers_of_shared_and_single_calling_codes() -> None:
    numbers = _numbers(20_000)
    answers = [is_valid(number) for number in numbers]
    assert answers == [phonenumbers.is_valid_number(number) for number in numbers]
    # Both answers occur, for shared calling codes too.
    shared = [a for n, a in zip(numbers, answers, strict=True) if n.country_code in (44, 1, 7)]
    assert True in shared and False in shared


@pytest.mark.parametrize(
    "raw",
    [
        "07950 123456",  # GB mobile
        "+44 7624 123456",  # Isle of Man mobile, shares +44
        "+44 7781 123456",  # Guernsey
        "+44 7797 123456",  # Jersey
        "+1 268 464 1234",  # Antigua, shares +1
        "+1 415 555 2671",  # US
        "+1 204 555 0123",  # Canada
        "+7 701 123 4567",  # Kazakhstan, shares +7
        "+7 912 345 6789",  # Russia
        "+262 269 61 23 45",  # Mayotte, shares +262 with Réunion
        "+44 20 7946 0000",
        "+44 1632 960000",  # reserved for drama: not valid
    ],
)
def test_numbers_of_every_region_sharing_a_code(raw: str) -> None:
    number = phonenumbers.parse(raw, "GB")
    assert is_valid(number) == phonenumbers.is_valid_number(number)


@settings(max_examples=2_000, deadline=None)
@given(st.sampled_from(CALLING_CODES), st.integers(min_value=1, max_value=10**15))
def test_any_national_number(code: int, national: int) -> None:
    number = phonenumbers.PhoneNumber(country_code=code, national_number=national)
    assert is_valid(number) == phonenumbers.is_valid_number(number)
