"""SMS length: GSM-7 or UCS-2, and how many segments a message takes (3GPP TS 23.038/23.040).

A single SMS holds 160 GSM-7 septets or 70 UCS-2 units; a concatenated one loses room to its
header: 153 septets or 67 units per segment. GSM-7 extension characters take two septets (an
escape and the character), and neither an escape pair nor a UTF-16 surrogate pair is split
across segments.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_EXTENSION = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True, slots=True)
class SmsInfo:
    """Encoding, length in encoding units, and segment count of one message."""

    encoding: str
    length: int
    segments: int


def _pack(units: list[int], single: int, multi: int) -> int:
    total = sum(units)
    if total == 0:
        return 0
    if total <= single:
        return 1
    segments, used = 1, 0
    for size in units:
        if used + size > multi:
            segments += 1
            used = 0
        used += size
    return segments


def sms_info(text: str) -> SmsInfo:
    """Measure a message as an SMS gateway would send it."""
    if all(c in _BASIC or c in _EXTENSION for c in text):
        septets = [2 if c in _EXTENSION else 1 for c in text]
        return SmsInfo(GSM7, sum(septets), _pack(septets, 160, 153))
    units = [2 if ord(c) > 0xFFFF else 1 for c in text]
    return SmsInfo(UCS2, sum(units), _pack(units, 70, 67))
