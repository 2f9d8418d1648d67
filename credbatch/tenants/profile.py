"""A tenant's profile: the issuer's face (name, logo, colours, contact, locale) and defaults.

One row per tenant in ``tenant_profiles``, read and written inside the caller's tenant
transaction (row-level security picks the row, so no tenant id is passed and none can be
wrong). A tenant that never set one has the empty profile: every text empty, no logo, no
defaults; whoever shows it falls back to the platform's wording.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

PNG = "image/png"
SVG = "image/svg+xml"
DEFAULT_LOCALE = "en"

# Every field UpdateTenantProfile may name in its update_mask, in the profile's order.
FIELDS = (
    "display_name",
    "localized_display_names",
    "logo",
    "primary_color",
    "background_color",
    "support_email",
    "support_url",
    "default_locale",
    "email_sender_name",
    "reply_to",
    "sms_sender_id",
    "retention_days",
    "reminder_days",
)


@dataclass(frozen=True)
class Logo:
    """An organisation's logo: PNG, or SVG already sanitised."""

    content: bytes
    media_type: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def extension(self) -> str:
        return "svg" if self.media_type == SVG else "png"


@dataclass(frozen=True)
class TenantProfile:
    """What holders and wallets see of the issuer; empty text = not set."""

    display_name: str = ""
    localized_display_names: Mapping[str, str] = field(default_factory=dict)
    logo: Logo | None = None
    primary_color: str = ""
    background_color: str = ""
    support_email: str = ""
    support_url: str = ""
    default_locale: str = ""
    email_sender_name: str = ""
    reply_to: str = ""
    sms_sender_id: str = ""
    retention_days: int | None = None
    reminder_days: tuple[int, ...] = ()
    updated_at: datetime | None = None

    @property
    def locale(self) -> str:
        """The locale of display_name: default_locale, or English when unset."""
        return self.default_locale or DEFAULT_LOCALE

    def names_by_locale(self) -> dict[str, str]:
        """Every name given, keyed by locale, the default locale's first."""
        found: dict[str, str] = {}
        if self.display_name:
            found[self.locale] = self.display_name
        for locale, name in self.localized_display_names.items():
            found.setdefault(locale, name)
        return found


_COLUMNS = """
display_name, display_names, logo, logo_media_type, primary_color, background_color,
support_email, support_url, default_locale, email_sender_name, reply_to, sms_sender_id,
retention_days, reminder_days, updated_at
"""


def from_row(row: asyncpg.Record) -> TenantProfile:
    """A profile from a row holding the columns of ``_COLUMNS`` (``logo`` may be absent)."""
    content = row.get("logo")
    return TenantProfile(
        display_name=row["display_name"],
        localized_display_names=dict(row["display_names"]),
        logo=None if content is None else Logo(bytes(content), row["logo_media_type"]),
        primary_color=row["primary_color"],
        background_color=row["background_color"],
        support_email=row["support_email"],
        support_url=row["support_url"],
        default_locale=row["default_locale"],
        email_sender_name=row["email_sender_name"],
        reply_to=row["reply_to"],
        sms_sender_id=row["sms_sender_id"],
        retention_days=row["retention_days"],
        reminder_days=tuple(row["reminder_days"] or ()),
        updated_at=row["updated_at"],
    )


async def load(conn: asyncpg.Connection) -> TenantProfile:
    """The profile of the transaction's tenant; the empty profile when it has none."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM tenant_profiles")
    return TenantProfile() if row is None else from_row(row)


async def lock(conn: asyncpg.Connection) -> TenantProfile:
    """As ``load``, holding the row until the transaction ends, so concurrent updates of
    different fields do not undo each other."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM tenant_profiles FOR UPDATE")
    return TenantProfile() if row is None else from_row(row)


async def save(conn: asyncpg.Connection, profile: TenantProfile) -> TenantProfile:
    """Store ``profile`` as the transaction's tenant's whole profile; returns it as stored."""
    logo = profile.logo
    row = await conn.fetchrow(
        f"""
        INSERT INTO tenant_profiles AS p (
          tenant_id, display_name, display_names, logo, logo_media_type, primary_color,
          background_color, support_email, support_url, default_locale, email_sender_name,
          reply_to, sms_sender_id, retention_days, reminder_days)
        VALUES (app_tenant(), $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        ON CONFLICT (tenant_id) DO UPDATE SET
          display_name = EXCLUDED.display_name, display_names = EXCLUDED.display_names,
          logo = EXCLUDED.logo, logo_media_type = EXCLUDED.logo_media_type,
          primary_color = EXCLUDED.primary_color, background_color = EXCLUDED.background_color,
          support_email = EXCLUDED.support_email, support_url = EXCLUDED.support_url,
          default_locale = EXCLUDED.default_locale,
          email_sender_name = EXCLUDED.email_sender_name, reply_to = EXCLUDED.reply_to,
          sms_sender_id = EXCLUDED.sms_sender_id, retention_days = EXCLUDED.retention_days,
          reminder_days = EXCLUDED.reminder_days, updated_at = now()
        RETURNING {_COLUMNS}
        """,
        profile.display_name,
        dict(profile.localized_display_names),
        None if logo is None else logo.content,
        None if logo is None else logo.media_type,
        profile.primary_color,
        profile.background_color,
        profile.support_email,
        profile.support_url,
        profile.default_locale,
        profile.email_sender_name,
        profile.reply_to,
        profile.sms_sender_id,
        profile.retention_days,
        list(profile.reminder_days) or None,
    )
    assert row is not None
    return from_row(row)


def logo_url(public_url: str, tenant_id: object, sha256: str, media_type: str) -> str:
    """Where the public endpoints serve the logo of digest ``sha256`` (hex): the digest in the
    path makes each version its own immutable resource, so caches and wallets may keep it for
    ever."""
    extension = "svg" if media_type == SVG else "png"
    return f"{public_url.rstrip('/')}/tenants/{tenant_id}/logo/{sha256}.{extension}"
