"""Security headers on every response of the public endpoints, in one middleware.

The claim pages show personal data and carry an unguessable token in their URL, so:
- ``Content-Security-Policy`` allows nothing to load, run or submit but the claim page's
  stylesheets and the issuer's logo (from this origin) and its QR code (a ``data:`` image
  inside the page): no script, no other origin, no form; and nobody may frame the pages
  (clickjacking). The same policy on the logo itself keeps an SVG opened on its own inert;
  ``X-Frame-Options: DENY`` says the same to browsers that predate ``frame-ancestors``;
- ``X-Content-Type-Options: nosniff``: a PDF or token is never sniffed into HTML;
- ``Referrer-Policy: no-referrer``: following a link never sends the token-bearing URL on;
- ``Cache-Control: no-store`` unless the route set its own (public keys and status lists may
  be cached; nothing personal may).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src 'self' data:; style-src 'self'; base-uri 'none';"
    " form-action 'none';"
    " frame-ancestors 'none'"
)
FIXED_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class SecurityHeaders:
    """ASGI middleware setting the headers above on every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in FIXED_HEADERS.items():
                    headers[name] = value
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self._app(scope, receive, send_with_headers)
