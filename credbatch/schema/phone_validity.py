"""``phonenumbers.is_valid_number`` with one walk of the type patterns instead of two, the
likeliest types first.

For a calling code several regions share (+44: GB, GG, IM, JE; +1: 25 regions),
``is_valid_number`` first finds the number's region by matching the national number against
each region's type patterns (``region_code_for_number``), then validates it against that
region by matching the same patterns again (``is_valid_number_for_region``). When the region
was found by that match, the second one can only agree, so it is skipped: for an upload's
phone column, about a fifth of the validation's time.

A number is valid when it matches its region's general pattern and the pattern of any one
type. ``phonenumbers`` tries the rarest types first (premium rate, toll free, ... voicemail)
because it wants the type; for the yes or no only whether one matches counts, so fixed line
and mobile, nearly every holder's number, are tried first.

Built on ``phonenumbers``' own metadata and helpers (pinned in pyproject.toml), step for step
as its ``_region_code_for_number_from_list`` walks the regions and ``_number_type_helper``
the types; ``tests/schema/test_phone_validity.py`` compares the answers with
``is_valid_number``'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from phonenumbers import REGION_CODE_FOR_NON_GEO_ENTITY, PhoneMetadata, PhoneNumber
from phonenumbers.phonemetadata import PhoneNumberDesc
from phonenumbers.phonenumberutil import (
    COUNTRY_CODE_TO_REGION_CODE,
    country_code_for_valid_region,
    national_significant_number,
)
from phonenumbers.re_util import re_compile

_Matcher = Callable[[str], bool]
# Per pattern description (metadata lives as long as the process; the entry holds it, so its
# id is not reused): its possible lengths and compiled pattern, read once.
_matchers: dict[int, tuple[PhoneNumberDesc | None, _Matcher]] = {}


def is_valid(number: PhoneNumber) -> bool:
    """Whether ``number`` matches a valid pattern, as ``phonenumbers.is_valid_number``."""
    country_code = number.country_code or 0
    regions = COUNTRY_CODE_TO_REGION_CODE.get(country_code)
    if regions is None:
        return False
    national = national_significant_number(number)
    if len(regions) == 1:
        return _valid_for_region(country_code, national, regions[0])
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is None:
            continue
        if metadata.leading_digits is not None:
            if re_compile(metadata.leading_digits).match(national):
                return _valid_for_region(country_code, national, region)
        elif _has_type(national, metadata):
            # The match that chose the region is the validation's own.
            return True
    return False


def _valid_for_region(country_code: int, national: str, region: str) -> bool:
    """As ``is_valid_number_for_region``, the national number already written out."""
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region.upper())
    if metadata is None or (
        region != REGION_CODE_FOR_NON_GEO_ENTITY
        and country_code != country_code_for_valid_region(region)
    ):
        return False
    return _has_type(national, metadata)


def _has_type(national: str, metadata: PhoneMetadata) -> bool:
    """Whether ``_number_type_helper`` finds a type (any but UNKNOWN): the same patterns,
    fixed line and mobile first."""
    if not _matches(national, metadata.general_desc):
        return False
    if _matches(national, metadata.fixed_line):
        return True
    if not metadata.same_mobile_and_fixed_line_pattern and _matches(national, metadata.mobile):
        return True
    return any(
        _matches(national, desc)
        for desc in (
            metadata.premium_rate,
            metadata.toll_free,
            metadata.shared_cost,
            metadata.voip,
            metadata.personal_number,
            metadata.pager,
            metadata.uan,
            metadata.voicemail,
        )
    )


def _matches(national: str, desc: PhoneNumberDesc | None) -> bool:
    """As ``phonenumbers``' ``_is_number_matching_desc``: the length among the possible
    ones (when the description lists any), and the whole number matching its pattern."""
    entry = _matchers.get(id(desc))
    if entry is None or entry[0] is not desc:
        entry = _matchers[id(desc)] = (desc, _matcher(desc))
    return entry[1](national)


def _matcher(desc: PhoneNumberDesc | None) -> _Matcher:
    if desc is None or not desc.national_number_pattern:
        return lambda national: False
    lengths = frozenset(desc.possible_length)
    pattern: re.Pattern[str] = re_compile(desc.national_number_pattern)
    if not lengths:
        return lambda national: pattern.fullmatch(national) is not None
    return lambda national: len(national) in lengths and pattern.fullmatch(national) is not None
