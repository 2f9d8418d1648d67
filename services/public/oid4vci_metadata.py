"""What a wallet reads first: the issuer's and the authorization server's metadata.

Each tenant is its own credential issuer, ``{public_url}/tenants/{tenant}``, and its own
authorization server for the pre-authorized code flow. Both metadata documents live at the
well-known path inserted after the host (RFC 8615 as OpenID4VCI 1.0 and RFC 8414 use it), and
also where wallets of earlier drafts look: appended to the identifier, and for the
authorization server under ``openid-configuration`` too (OpenID Connect Discovery's name,
which draft-era wallets try first). Every path of one document answers the same document.
"""

from __future__ import annotations

from typing import Any

from credbatch.tenants.display import IssuerDisplay
from services.public.oid4vci_store import Configuration

PRE_AUTHORIZED_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
FORMAT = "dc+sd-jwt"

_ISSUER = "/tenants/{tenant}"
CREDENTIAL_ISSUER_PATHS = (
    "/.well-known/openid-credential-issuer" + _ISSUER,
    _ISSUER + "/.well-known/openid-credential-issuer",
)
AUTHORIZATION_SERVER_PATHS = tuple(
    path
    for name in ("oauth-authorization-server", "openid-configuration")
    for path in (f"/.well-known/{name}" + _ISSUER, _ISSUER + f"/.well-known/{name}")
)


def issuer_id(public_url: str, tenant: object) -> str:
    return f"{public_url}/tenants/{tenant}"


def vct(issuer: str, configuration: Configuration) -> str:
    """The credential type, as the workers put it in ``vct``."""
    return f"{issuer}/schemas/{configuration.schema_id}/v{configuration.version}"


def _claim_display(attribute: dict[str, Any], locales: tuple[str, ...]) -> list[dict[str, str]]:
    fallback = str(attribute.get("description") or attribute["name"])
    labels = attribute.get("labels") or {}
    every = dict.fromkeys((*locales, *labels))
    return [{"name": str(labels.get(locale) or fallback), "locale": locale} for locale in every]


def _logo(display: IssuerDisplay, locale: str) -> dict[str, str]:
    return {"uri": display.logo_uri, "alt_text": display.logo_alt(locale)}


def _credential_display(configuration: Configuration, display: IssuerDisplay) -> list[Any]:
    found: list[dict[str, Any]] = []
    for locale in display.locales:
        entry: dict[str, Any] = {"name": configuration.display_name, "locale": locale}
        if display.logo_uri:
            entry["logo"] = _logo(display, locale)
        if display.background_color:
            entry["background_color"] = display.background_color
            entry["text_color"] = display.text_color
        found.append(entry)
    return found


def _configuration(
    issuer: str, configuration: Configuration, display: IssuerDisplay
) -> dict[str, Any]:
    claims = [
        {
            "path": [attribute["name"]],
            "mandatory": bool(attribute.get("required", False)),
            "display": _claim_display(attribute, display.locales),
        }
        for attribute in configuration.attributes
        if isinstance(attribute.get("name"), str)
    ]
    return {
        "format": FORMAT,
        "vct": vct(issuer, configuration),
        "cryptographic_binding_methods_supported": ["jwk"],
        "credential_signing_alg_values_supported": ["ES256"],
        "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": ["ES256"]}},
        "credential_metadata": {
            "display": _credential_display(configuration, display),
            "claims": claims,
        },
    }


def _issuer_display(display: IssuerDisplay) -> list[dict[str, Any]]:
    # A tenant that never named itself has no display: a wallet then shows the issuer's URL
    # rather than a name we made up.
    found: list[dict[str, Any]] = []
    for locale, name in display.names.items():
        entry: dict[str, Any] = {"name": name, "locale": locale}
        if display.logo_uri:
            entry["logo"] = _logo(display, locale)
        found.append(entry)
    return found


def issuer_metadata(
    issuer: str, configurations: list[Configuration], display: IssuerDisplay | None = None
) -> dict[str, Any]:
    """Credential issuer metadata: the issuer's name and logo per locale (``display``), and one
    configuration per schema version of the tenant."""
    display = display or IssuerDisplay()
    metadata: dict[str, Any] = {
        "credential_issuer": issuer,
        "credential_endpoint": f"{issuer}/credential",
        "nonce_endpoint": f"{issuer}/nonce",
    }
    if display.names:
        metadata["display"] = _issuer_display(display)
    metadata["credential_configurations_supported"] = {
        c.id: _configuration(issuer, c, display) for c in configurations
    }
    return metadata


def authorization_server_metadata(issuer: str) -> dict[str, Any]:
    """RFC 8414 metadata of the tenant's authorization server (the issuer itself)."""
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/token",
        "grant_types_supported": [PRE_AUTHORIZED_GRANT],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "pre-authorized_grant_anonymous_access_supported": True,
    }
