"""The OpenID4VCI credential-offer link of a record, as invitations and the claim page show it.

The offer itself (``{issuer}/offers/{pre-authorized code}``) is served by the public
component's OID4VCI endpoints; the link a wallet opens is
``openid-credential-offer://?credential_offer_uri=…`` (OpenID4VCI, "Sending Credential Offer
by Reference"). One builder, so an invitation and the claim page always name the same offer.
"""

from __future__ import annotations

from urllib.parse import urlencode

OFFER_SCHEME = "openid-credential-offer://"


def offer_uri(issuer: str, pre_authorized_code: str) -> str:
    """Where a wallet fetches the offer (its ``credential_offer_uri``)."""
    return f"{issuer}/offers/{pre_authorized_code}"


def offer_link(issuer: str, pre_authorized_code: str) -> str:
    """The same-device link (and QR code content) of an offer of the issuer ``issuer``."""
    query = urlencode({"credential_offer_uri": offer_uri(issuer, pre_authorized_code)})
    return f"{OFFER_SCHEME}?{query}"
