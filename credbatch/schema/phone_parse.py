"""``phonenumbers.parse`` for a number already written as ``+`` and digits, at a third of the cost.

Most phone cells of an upload are already in E.164 form. ``parse`` treats every input as free
text: it looks for a number inside it, for an extension, for RFC 3966 parameters, for letters
of a vanity number, and normalises each digit through Unicode tables; for ``+`` and ASCII
digits all of that finds nothing and changes nothing. Here such a number goes straight to the
steps that do something for it, with ``phonenumbers``' own helpers and metadata (pinned in
pyproject.toml), in ``parse``'s order: the country calling code, the region's metadata, the
national prefix (stripped only when what remains is a possible length), the length limits and
the leading zeros. Anything else, and any number that ``parse`` would refuse, takes ``parse``
itself, so its errors are its own. ``tests/schema/test_phone_parse.py`` compares the results
with ``parse``'s.
"""

from __future__ import annotations

import re

from phonenumbers import PhoneMetadata, PhoneNumber, parse
from phonenumbers.phonenumberutil import (
    _MAX_LENGTH_FOR_NSN,
    _MIN_LENGTH_FOR_NSN,
    ValidationResult,
    _extract_country_code,
    _maybe_strip_national_prefix_carrier_code,
    _set_italian_leading_zeros_for_phone_number,
    _test_number_length,
    region_code_for_country_code,
)

_PLUS_AND_DIGITS = re.compile(r"\+[0-9]{3,20}")
_KEEP_PREFIX_WHEN = (
    ValidationResult.TOO_SHORT,
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    ValidationResult.INVALID_LENGTH,
)


def parse_number(raw: str, region: str) -> PhoneNumber:
    """As ``phonenumbers.parse(raw, region)``.

    Raises:
        phonenumbers.NumberParseException: as ``parse``.
    """
    if _PLUS_AND_DIGITS.fullmatch(raw) is None:
        return parse(raw, region)
    country_code, national = _extract_country_code(raw[1:])
    if country_code == 0:
        return parse(raw, region)  # parse then tries the digits without the plus
    number_region = region_code_for_country_code(country_code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, number_region)
    if metadata is None or len(national) < _MIN_LENGTH_FOR_NSN:
        return parse(raw, region)
    _, stripped, _ = _maybe_strip_national_prefix_carrier_code(national, metadata)
    if _test_number_length(stripped, metadata) not in _KEEP_PREFIX_WHEN:
        national = stripped
    if not _MIN_LENGTH_FOR_NSN <= len(national) <= _MAX_LENGTH_FOR_NSN:
        return parse(raw, region)
    number = PhoneNumber(country_code=country_code)
    _set_italian_leading_zeros_for_phone_number(national, number)
    number.national_number = int(national)
    return number
