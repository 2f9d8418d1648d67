"""BCP 47 language tags: their canonical case, and choosing one for an Accept-Language header.

Locales key what wallets and pages pick a display from (type and issuer metadata, the claim
page), so they are compared in one spelling: language lower case, script title case, region
upper case (``zh-Hant-TW``), as RFC 5646 recommends.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# BCP 47 language tags as wallets and browsers use them: language, optional script, region
# and variants (no extensions or private use: nothing a display would be keyed by).
_LOCALE = re.compile(
    r"(?P<language>[A-Za-z]{2,3})(?:-(?P<script>[A-Za-z]{4}))?"
    r"(?:-(?P<region>[A-Za-z]{2}|[0-9]{3}))?"
    r"(?P<variants>(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*)"
)
_QUALITY = re.compile(r";\s*q\s*=\s*([0-9.]+)", re.I)
# More entries than a browser sends are ignored: the header is the client's to make long.
_MAX_ACCEPTED = 20


def normalise_locale(tag: str) -> str | None:
    """``tag`` in its canonical case (``de-CH``, ``zh-Hant-TW``), or None if not BCP 47."""
    match = _LOCALE.fullmatch(tag)
    if match is None:
        return None
    parts = [match["language"].lower()]
    if match["script"]:
        parts.append(match["script"].title())
    if match["region"]:
        parts.append(match["region"].upper())
    if match["variants"]:
        parts.extend(v.lower() for v in match["variants"].split("-") if v)
    return "-".join(parts)


def negotiate(accept_language: str, available: Sequence[str], default: str) -> str:
    """The best-weighted locale of ``available`` for an ``Accept-Language`` header: exactly,
    or by language (``de-AT`` takes ``de``, ``de`` takes ``de-CH``); else ``default``."""
    wanted: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")[:_MAX_ACCEPTED]):
        tag = item.split(";", 1)[0].strip()
        quality = _QUALITY.search(item)
        try:
            weight = float(quality.group(1)) if quality else 1.0
        except ValueError:
            continue
        if tag and weight > 0:
            wanted.append((-weight, position, tag.lower()))
    lowered = {locale.lower(): locale for locale in available}
    for _, _, tag in sorted(wanted):
        if tag in lowered:
            return lowered[tag]
        language = tag.split("-", 1)[0]
        for key, locale in lowered.items():
            if key.split("-", 1)[0] == language:
                return locale
    return default
