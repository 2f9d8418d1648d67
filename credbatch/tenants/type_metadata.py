"""SD-JWT VC Type Metadata of a schema version: what a wallet fetches from a credential's
``vct`` to show it (its name, the issuer's logo and colours, each claim's label, per locale).

The document is built once per schema version, stored as bytes and served as stored; the
credential carries ``vct#integrity``, the SRI digest of exactly those bytes (W3C Subresource
Integrity: ``sha256-`` and the base64 digest), so the wallet can tell the document it fetched
is the one the issuer signed for. Building is deterministic for the same inputs, but the
stored bytes, not a rebuild, are what counts: the profile may change after.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from credbatch.schema.model import SchemaVersion
from credbatch.tenants.display import IssuerDisplay

MEDIA_TYPE = "application/json"
CERTIFICATE_CLAIM = "Cred_URL"
CERTIFICATE_LABEL = "Certificate (PDF)"


def integrity(document: bytes) -> str:
    """The SRI integrity metadata of ``document``: ``sha256-<base64 digest>``."""
    return "sha256-" + base64.b64encode(hashlib.sha256(document).digest()).decode("ascii")


def locales(schema: SchemaVersion, display: IssuerDisplay) -> tuple[str, ...]:
    """Every locale given for the issuer's name or any claim's label, the default first."""
    found = dict.fromkeys(display.locales)
    for attribute in schema.attributes:
        found.update(dict.fromkeys(tag for tag, _ in attribute.labels))
    return tuple(found)


def _rendering(display: IssuerDisplay, locale: str) -> dict[str, Any]:
    simple: dict[str, Any] = {}
    if display.logo_uri:
        simple["logo"] = {
            "uri": display.logo_uri,
            "uri#integrity": display.logo_integrity,
            "alt_text": display.logo_alt(locale),
        }
    if display.background_color:
        simple["background_color"] = display.background_color
        simple["text_color"] = display.text_color
    return {"simple": simple}


def _claims(schema: SchemaVersion, every: tuple[str, ...]) -> list[dict[str, Any]]:
    claims: list[dict[str, Any]] = []
    for attribute in schema.attributes:
        claim: dict[str, Any] = {
            "path": [attribute.name],
            "display": [
                {
                    "locale": locale,
                    "label": attribute.label(locale),
                    **({"description": attribute.description} if attribute.description else {}),
                }
                for locale in every
            ],
            "sd": "always",
        }
        if attribute.required:
            claim["mandatory"] = True
        claims.append(claim)
    if schema.requires_certificate:
        claims.append(
            {
                "path": [CERTIFICATE_CLAIM],
                "display": [{"locale": locale, "label": CERTIFICATE_LABEL} for locale in every],
                "sd": "always",
            }
        )
    return claims


def build(vct: str, schema: SchemaVersion, display: IssuerDisplay) -> bytes:
    """The type metadata document of ``schema`` under ``vct``, as UTF-8 JSON bytes."""
    every = locales(schema, display)
    document: dict[str, Any] = {"vct": vct, "name": schema.display_name}
    if schema.description:
        document["description"] = schema.description
    document["display"] = [
        {
            "locale": locale,
            "name": schema.display_name,
            **({"description": schema.description} if schema.description else {}),
            "rendering": _rendering(display, locale),
        }
        for locale in every
    ]
    document["claims"] = _claims(schema, every)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
