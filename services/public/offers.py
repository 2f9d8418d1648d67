"""The OpenID4VCI credential-offer link of a holder's credential, as the claim page shows it.

The offer itself (``{public_url}/tenants/{tenant}/offers/{offer_id}``) is served by the
OID4VCI module of the public component; this module only builds the link a wallet opens,
``openid-credential-offer://?credential_offer_uri=…`` (OpenID4VCI, "Sending Credential Offer
by Reference"), so the page and the invitations name the same offer.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

OFFER_SCHEME = "openid-credential-offer://"


def offer_uri(public_url: str, tenant_id: uuid.UUID, offer_id: str) -> str:
    """Where a wallet fetches the offer (its ``credential_offer_uri``)."""
    return f"{public_url.rstrip('/')}/tenants/{tenant_id}/offers/{offer_id}"


def offer_link(public_url: str, tenant_id: uuid.UUID, offer_id: str) -> str:
    """The same-device link (and QR code content) of the offer ``offer_id`` of a tenant."""
    query = urlencode({"credential_offer_uri": offer_uri(public_url, tenant_id, offer_id)})
    return f"{OFFER_SCHEME}?{query}"
