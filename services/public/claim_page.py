"""The holder's claim page: what the credential states and how to put it in a wallet.

A plain HTML page that works without JavaScript: the credential's summary and the ways to take
it that its batch's claim mode opens, and no other (a link that cannot work is not shown).
A wallet batch (OID4VCI) shows a QR code of the OpenID4VCI offer link for a wallet on another
device, the same link as an "Open in wallet" button for a wallet on this one, and a hint when
the wallet will ask for a transaction code; its bearer download is closed. A download batch
has no offer, and shows the SD-JWT download instead.
The QR code is a PNG inside the page (a ``data:`` URI) and the stylesheet is served by
``stylesheet`` from this origin, so the Content-Security-Policy (``headers``) allows images
from ``data:`` and styles from ``'self'`` and nothing else.

The issuer appears as its profile presents it (``credbatch.tenants.display``): its name in the
locale the browser asks for (``Accept-Language``), its logo, served by us from this origin
(``'self'`` images: never hot-linked, so no third party learns who opened a claim link), its
colours through a stylesheet of this origin whose URL is the colours themselves (``theme``:
the CSP forbids inline styles), and its support contact.
"""

from __future__ import annotations

import base64
import io
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import qrcode
from jinja2 import Environment, FileSystemLoader, select_autoescape
from qrcode.image.pil import PilImage
from starlette.requests import Request
from starlette.responses import Response

from credbatch.batches.claim_mode import ClaimMode
from credbatch.locales import negotiate
from credbatch.offer_links import offer_link
from credbatch.signing.offer_codes import pre_authorized_code
from credbatch.tenants.display import IssuerDisplay
from credbatch.tenants.validation import text_color
from services.public.errors import not_found

THEME_PATH = "/static/theme/{colors}.css"
_THEME = re.compile(r"(?P<background>[0-9a-f]{6}|none)-(?P<primary>[0-9a-f]{6}|none)")

STYLESHEET_PATH = "/static/claim.css"
_HERE = Path(__file__).parent
_PAGES = Environment(
    loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(default=True)
)
_STYLESHEET = (_HERE / "static" / "claim.css").read_bytes()


def qr_data_uri(text: str) -> str:
    """A PNG of ``text`` as a QR code, as a ``data:`` URI (medium error correction: a screen
    photographed at an angle still reads)."""
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=8,
        border=4,
        image_factory=PilImage,
    )
    code.add_data(text)
    code.make(fit=True)
    buffer = io.BytesIO()
    code.make_image().save(buffer)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def render(
    *,
    public_url: str,
    tenant_id: uuid.UUID,
    claim_token: str,
    payload: dict[str, Any],
    claims: list[tuple[str, Any]],
    schema_name: str,
    claim_mode: ClaimMode,
    asks_tx_code: bool,
    revoked: bool,
    offer_generation: int = 0,
    display: IssuerDisplay | None = None,
    accept_language: str = "",
    type_metadata: bytes | None = None,
) -> str:
    """The page of a verified credential (``payload``) and its disclosed ``claims``: the
    schema's name, how its holder claims it, whether the wallet will ask for a code sent by
    SMS, whether the issuer revoked it (then neither offer nor download is shown), and the
    generation of the record's current offer (``offer_generation``, after a resend); the
    issuer as ``display`` shows it, named in the locale ``accept_language`` prefers, and each
    claim by its label in that language when the credential's ``type_metadata`` has one."""
    display = display or IssuerDisplay()
    locale = display.choose_locale(accept_language)
    label_locale, labels = claim_labels(type_metadata, accept_language, display.default_locale)
    issued = datetime.fromtimestamp(int(payload.get("iat", 0)), UTC).date()
    # The offer's pre-authorized code derives from the claim token, so this page, which holds
    # no key, names the same offer as the invitation.
    issuer = f"{public_url.rstrip('/')}/tenants/{tenant_id}"
    link = offer_link(issuer, pre_authorized_code(tenant_id, claim_token, offer_generation))
    wallet = claim_mode is ClaimMode.OID4VCI and not revoked
    # Cred_URL is disclosed like an attribute (a credential issued before that made it
    # disclosable carries it in the payload): shown as the certificate's link, not as a claim.
    cred_url = dict(claims).get("Cred_URL", payload.get("Cred_URL"))
    claims = [(name, value) for name, value in claims if name != "Cred_URL"]
    return _PAGES.get_template("claim.html").render(
        schema_name=schema_name,
        issuer=payload.get("iss", ""),
        issued=issued.isoformat(),
        issued_text=f"{issued.day} {issued:%B %Y}",
        revoked=revoked,
        wallet=wallet,
        offer_link=link,
        qr_data_uri=qr_data_uri(link) if wallet else "",
        tx_code=asks_tx_code,
        claims=[(name, labels.get(name, name), value) for name, value in claims],
        label_locale=label_locale,
        cred_url=cred_url,
        download=(
            f"{public_url}/claim/{claim_token}/credential"
            if claim_mode is ClaimMode.DOWNLOAD
            else None
        ),
        stylesheet=STYLESHEET_PATH,
        theme=theme_path(display),
        issuer_name=display.name(locale),
        issuer_locale=locale,
        logo=urlsplit(display.logo_uri).path if display.logo_uri else "",
        logo_alt=display.logo_alt(locale),
        support_email=display.support_email,
        support_url=display.support_url,
    )


def claim_labels(
    type_metadata: bytes | None, accept_language: str, default: str
) -> tuple[str, dict[str, str]]:
    """The locale chosen among the type metadata's claim labels, and each top-level claim's
    label in it; no labels without metadata (the page then shows the claim names)."""
    if type_metadata is None:
        return default, {}
    by_claim: dict[str, dict[str, str]] = {}
    for claim in json.loads(type_metadata).get("claims", []):
        path = claim.get("path") or [None]
        if isinstance(path[0], str) and len(path) == 1:
            by_claim[path[0]] = {
                d["locale"]: d["label"]
                for d in claim.get("display", [])
                if isinstance(d.get("locale"), str) and isinstance(d.get("label"), str)
            }
    locales = list(dict.fromkeys(locale for labels in by_claim.values() for locale in labels))
    chosen = negotiate(accept_language, locales, default if default in locales else "")
    if not chosen and locales:
        chosen = locales[0]
    return chosen, {name: labels[chosen] for name, labels in by_claim.items() if chosen in labels}


def theme_path(display: IssuerDisplay) -> str:
    """The stylesheet of the issuer's colours, empty when it chose none."""
    if not display.background_color and not display.primary_color:
        return ""
    background = display.background_color.removeprefix("#") or "none"
    primary = display.primary_color.removeprefix("#") or "none"
    return THEME_PATH.format(colors=f"{background}-{primary}")


def theme_css(background: str, primary: str) -> str:
    """The colour rules for ``#background`` and ``#primary`` (each may be empty). Text on
    each colour is black or white, whichever reads better, so every pairing keeps its
    contrast whatever the issuer chose."""
    rules = []
    if background:
        ink = text_color(background)
        rules.append(
            f".brand {{ background: {background}; color: {ink}; }}\n"
            f".brand .issuer, .brand a {{ color: {ink}; }}\n"
        )
    if primary:
        rules.append(f".button {{ background: {primary}; color: {text_color(primary)}; }}\n")
    return "".join(rules)


async def theme(request: Request) -> Response:
    """The stylesheet of a pair of colours; it depends on its URL alone, so it is immutable."""
    match = _THEME.fullmatch(request.path_params["colors"])
    if match is None:
        return not_found("Nothing is published at this address: check the link")
    background, primary = (
        "" if match[part] == "none" else f"#{match[part]}" for part in ("background", "primary")
    )
    return Response(
        theme_css(background, primary),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


async def stylesheet(request: Request) -> Response:
    """The page's stylesheet (the same for every page, so caches may keep it)."""
    return Response(
        _STYLESHEET, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
    )
