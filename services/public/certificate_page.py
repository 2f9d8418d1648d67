"""What ``/c/{id}`` (a credential's ``Cred_URL``) answers: the certificate's PDF while its
credential stands, and a fixed "revoked" page with 410 Gone once its issuer revoked it.

The revoked page is the same for every certificate: it names no holder, no attribute and no
issuer, so a link that leaked tells its finder only that it is dead. It is static HTML with
the claim page's stylesheet, within the public endpoints' Content-Security-Policy.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

from starlette.responses import HTMLResponse, Response

from services.public.claim_page import STYLESHEET_PATH
from services.public.repository import StoredCertificate

_REVOKED_PAGE = Template(
    (Path(__file__).parent / "templates" / "certificate_revoked.html").read_text(encoding="utf-8")
).substitute(stylesheet=STYLESHEET_PATH)

# no-store on both answers. The PDF holds the holder's attributes, which no shared cache may
# keep, and revocation must take effect on the next request: a copy kept by any cache, even
# the holder's browser (private), would show a revoked certificate as valid for its max-age.
# The PDF is small and fetched rarely, so serving it afresh every time costs nothing.
_NO_STORE = {"Cache-Control": "no-store"}


def certificate_response(found: StoredCertificate) -> Response:
    """The PDF of ``found``, or the revoked page (never its PDF) when its record is revoked."""
    if found.revoked or found.pdf is None:
        return HTMLResponse(_REVOKED_PAGE, status_code=410, headers=_NO_STORE)
    return Response(found.pdf, media_type="application/pdf", headers=_NO_STORE)
