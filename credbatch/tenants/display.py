"""The issuer as holders see it, resolved from its profile: a name per locale, the logo's
public URL, readable colours and the support contact, with the platform's defaults where the
profile is silent. Everything that shows the issuer (claim page, messages, certificate, issuer
and type metadata) takes this one view, so they cannot disagree.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field

from credbatch.locales import negotiate
from credbatch.tenants.profile import DEFAULT_LOCALE, TenantProfile, logo_url
from credbatch.tenants.validation import PAGE_BACKGROUND, text_color


@dataclass(frozen=True)
class IssuerDisplay:
    """What a holder sees of the issuer. ``names`` is keyed by locale, the default first; it
    is empty when the tenant never named itself (callers then show their own wording)."""

    names: Mapping[str, str] = field(default_factory=dict)
    default_locale: str = DEFAULT_LOCALE
    logo_uri: str = ""
    logo_sha256: str = ""  # hex
    primary_color: str = ""
    background_color: str = ""
    support_email: str = ""
    support_url: str = ""

    @property
    def locales(self) -> tuple[str, ...]:
        """Every locale the issuer is named in, the default first; the default alone if none."""
        return tuple(self.names) or (self.default_locale,)

    def name(self, locale: str | None = None) -> str:
        """The name in ``locale`` (or the default locale's, or any); empty when never named."""
        if locale and locale in self.names:
            return self.names[locale]
        return self.names.get(self.default_locale) or next(iter(self.names.values()), "")

    def logo_alt(self, locale: str | None = None) -> str:
        """Alternative text of the logo: what it stands for, the issuer's name."""
        name = self.name(locale)
        return f"{name} logo" if name else "Issuer logo"

    @property
    def logo_integrity(self) -> str:
        """The logo's SRI digest (``sha256-<base64>``), empty without a logo."""
        if not self.logo_sha256:
            return ""
        return "sha256-" + base64.b64encode(bytes.fromhex(self.logo_sha256)).decode("ascii")

    @property
    def text_color(self) -> str:
        """Black or white, whichever reads better on the background colour."""
        return text_color(self.background_color or PAGE_BACKGROUND)

    def choose_locale(self, accept_language: str) -> str:
        """The locale to show for an ``Accept-Language`` header (``locales.negotiate``)."""
        return negotiate(accept_language, tuple(self.names), self.default_locale)


def issuer_display(
    profile: TenantProfile,
    *,
    logo_uri: str = "",
    logo_sha256: str = "",
) -> IssuerDisplay:
    """The view of ``profile``; its logo by the public URL and digest the caller knows."""
    return IssuerDisplay(
        names=profile.names_by_locale(),
        default_locale=profile.locale,
        logo_uri=logo_uri,
        logo_sha256=logo_sha256,
        primary_color=profile.primary_color,
        background_color=profile.background_color,
        support_email=profile.support_email,
        support_url=profile.support_url,
    )


def display_of(profile: TenantProfile, public_url: str, tenant_id: object) -> IssuerDisplay:
    """The view of a profile loaded with its logo (the application role's read)."""
    logo = profile.logo
    if logo is None:
        return issuer_display(profile)
    return issuer_display(
        profile,
        logo_uri=logo_url(public_url, tenant_id, logo.sha256, logo.media_type),
        logo_sha256=logo.sha256,
    )
