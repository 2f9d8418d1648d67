"""Checks of a tenant profile, every field with its own violation, all reported at once.

A profile is shown to holders by pages, mail clients and wallets that trust it to be well
formed: names without control characters (they end up in headers and PDF text), colours that
keep text readable (WCAG 2.x contrast), contact addresses that are addresses, locales that are
BCP 47 tags (they key the metadata wallets pick a display from).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

from credbatch.errors import FieldViolation
from credbatch.locales import normalise_locale
from credbatch.tenants.profile import TenantProfile

MAX_NAME_CHARS = 200
MAX_SENDER_NAME_CHARS = 100
MAX_LOCALES = 20
MAX_URL_CHARS = 2000
MIN_RETENTION_DAYS = 1
MAX_RETENTION_DAYS = 3650
MAX_REMINDERS = 5
MAX_REMINDER_DAY = 90
# WCAG 2.x 1.4.3: normal text needs 4.5:1 against its background.
MIN_TEXT_CONTRAST = 4.5
PAGE_BACKGROUND = "#ffffff"
_PREFIX = "tenant_profile."
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_SMS_SENDER = re.compile(r"[A-Za-z0-9 ]{1,11}")


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text)


def _text(field: str, value: str, limit: int) -> list[FieldViolation]:
    if len(value) > limit:
        return [FieldViolation(_PREFIX + field, f"at most {limit} characters", "TOO_LONG")]
    if _has_control(value):
        return [
            FieldViolation(
                _PREFIX + field, "no control or line-break characters", "INVALID_CHARACTERS"
            )
        ]
    if value and not value.strip():
        return [FieldViolation(_PREFIX + field, "must not be only spaces", "BLANK")]
    return []


def _email(field: str, value: str, *, header: bool = False) -> list[FieldViolation]:
    """``header``: the address goes into a mail header as is, so it must be ASCII."""
    if not value:
        return []
    try:
        validate_email(value, check_deliverability=False, allow_smtputf8=not header)
    except EmailNotValidError as error:
        return [FieldViolation(_PREFIX + field, f"not an email address: {error}", "INVALID_EMAIL")]
    return []


def _url(field: str, value: str) -> list[FieldViolation]:
    if not value:
        return []
    if len(value) > MAX_URL_CHARS:
        return [FieldViolation(_PREFIX + field, f"at most {MAX_URL_CHARS} characters", "TOO_LONG")]
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or "@" in parts.netloc:
        return [
            FieldViolation(
                _PREFIX + field, "must be an https URL with a host and no user info", "INVALID_URL"
            )
        ]
    if _has_control(value) or any(c.isspace() for c in value):
        return [FieldViolation(_PREFIX + field, "no spaces or control characters", "INVALID_URL")]
    return []


def _locale(field: str, value: str) -> list[FieldViolation]:
    if value and normalise_locale(value) is None:
        return [
            FieldViolation(
                _PREFIX + field,
                f"{value[:40]!r} is not a BCP 47 language tag (e.g. en, de-CH)",
                "INVALID_LOCALE",
            )
        ]
    return []


def _names(names: Mapping[str, str]) -> list[FieldViolation]:
    field = "localized_display_names"
    if len(names) > MAX_LOCALES:
        return [
            FieldViolation(_PREFIX + field, f"at most {MAX_LOCALES} locales", "TOO_MANY_ENTRIES")
        ]
    found: list[FieldViolation] = []
    seen: set[str] = set()
    for tag, name in names.items():
        canonical = normalise_locale(tag)
        if canonical is None:
            found += _locale(f"{field}[{tag[:40]!r}]", tag)
            continue
        if canonical in seen:
            found.append(
                FieldViolation(
                    _PREFIX + f"{field}[{tag!r}]", "locale given twice", "DUPLICATE_LOCALE"
                )
            )
        seen.add(canonical)
        if not name.strip():
            found.append(
                FieldViolation(_PREFIX + f"{field}[{tag!r}]", "must not be empty", "BLANK")
            )
        else:
            found += _text(f"{field}[{tag!r}]", name, MAX_NAME_CHARS)
    return found


def _color(field: str, value: str) -> list[FieldViolation]:
    if value and not _COLOR.fullmatch(value):
        return [
            FieldViolation(_PREFIX + field, "must be #rrggbb (six hex digits)", "INVALID_COLOR")
        ]
    return []


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def luminance(color: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def text_color(background: str) -> str:
    """Black or white, whichever reads better on ``background``."""
    return (
        "#000000"
        if contrast(background, "#000000") >= contrast(background, "#ffffff")
        else ("#ffffff")
    )


def _contrast(profile: TenantProfile) -> list[FieldViolation]:
    if not profile.primary_color or _color("", profile.primary_color):
        return []
    background = profile.background_color or PAGE_BACKGROUND
    if _color("", background):
        return []
    ratio = contrast(profile.primary_color, background)
    if ratio < MIN_TEXT_CONTRAST:
        against = "background_color" if profile.background_color else "a white page"
        return [
            FieldViolation(
                _PREFIX + "primary_color",
                f"contrast with {against} is {ratio:.2f}:1; text needs at least "
                f"{MIN_TEXT_CONTRAST}:1 (WCAG 1.4.3)",
                "LOW_CONTRAST",
            )
        ]
    return []


def _sms_sender(value: str) -> list[FieldViolation]:
    if value and (not _SMS_SENDER.fullmatch(value) or not any(c.isalpha() for c in value)):
        return [
            FieldViolation(
                _PREFIX + "sms_sender_id",
                "1 to 11 letters, digits or spaces, at least one letter",
                "INVALID_SENDER_ID",
            )
        ]
    return []


def _retention(value: int | None) -> list[FieldViolation]:
    if value is not None and not MIN_RETENTION_DAYS <= value <= MAX_RETENTION_DAYS:
        return [
            FieldViolation(
                _PREFIX + "retention_days",
                f"between {MIN_RETENTION_DAYS} and {MAX_RETENTION_DAYS} days",
                "OUT_OF_RANGE",
            )
        ]
    return []


def reminder_violations(days: Iterable[int], field: str) -> list[FieldViolation]:
    """Reminder days: at most five, strictly ascending, each 1 to 90 (``field`` names them)."""
    values = list(days)
    if len(values) > MAX_REMINDERS:
        return [FieldViolation(field, f"at most {MAX_REMINDERS} reminders", "TOO_MANY_ENTRIES")]
    if any(not 1 <= d <= MAX_REMINDER_DAY for d in values):
        return [FieldViolation(field, f"each day between 1 and {MAX_REMINDER_DAY}", "OUT_OF_RANGE")]
    if any(b <= a for a, b in itertools.pairwise(values)):
        return [FieldViolation(field, "strictly ascending days", "NOT_ASCENDING")]
    return []


def violations(profile: TenantProfile) -> list[FieldViolation]:
    """Every problem of ``profile`` as it would be stored (the logo is checked on upload)."""
    return [
        *_text("display_name", profile.display_name, MAX_NAME_CHARS),
        *_names(profile.localized_display_names),
        *_color("primary_color", profile.primary_color),
        *_color("background_color", profile.background_color),
        *_contrast(profile),
        *_email("support_email", profile.support_email),
        *_url("support_url", profile.support_url),
        *_locale("default_locale", profile.default_locale),
        *_text("email_sender_name", profile.email_sender_name, MAX_SENDER_NAME_CHARS),
        *_email("reply_to", profile.reply_to, header=True),
        *_sms_sender(profile.sms_sender_id),
        *_retention(profile.retention_days),
        *reminder_violations(profile.reminder_days, _PREFIX + "reminder_days"),
    ]


def normalised(profile: TenantProfile) -> TenantProfile:
    """``profile`` with colours lower case and locales in canonical case (call once valid)."""
    from dataclasses import replace

    return replace(
        profile,
        primary_color=profile.primary_color.lower(),
        background_color=profile.background_color.lower(),
        default_locale=normalise_locale(profile.default_locale) or "",
        localized_display_names={
            normalise_locale(tag) or tag: name
            for tag, name in profile.localized_display_names.items()
        },
    )
