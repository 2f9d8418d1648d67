"""The one shape of every error the public endpoints answer, and the app's catch-alls.

``{"error": code, "error_description": text}``: the code is the one the relevant spec names
(RFC 6749 §5.2 at the token endpoint, RFC 6750 §3.1 and OpenID4VCI 1.0 §8.3.1 at the
credential endpoint), and the description tells the integrator what to change in the request.
Descriptions are fixed text written here: never a secret, a code or a holder's data, since a
request's own values would be echoed to whoever sent it and into any log of the response.

Routes that match nothing, methods a route does not take and unforeseen exceptions come out
the same way (``EXCEPTION_HANDLERS``), so a client never gets Starlette's plain-text bodies.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


def error_response(error: str, description: str, status: int = 400, **headers: str) -> Response:
    """The JSON error ``error`` with its ``description``, answered with ``status``."""
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers=headers or None,
    )


def not_found(description: str) -> Response:
    return error_response("not_found", description, 404)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        allowed = headers.get("Allow", "")
        return error_response(
            "method_not_allowed",
            f"{request.method} is not accepted here; this path accepts {allowed}",
            405,
            **headers,
        )
    if exc.status_code == 404:
        return not_found(
            "No endpoint at this path: see /openapi.yaml for the paths this server answers"
        )
    return error_response("invalid_request", str(exc.detail), exc.status_code, **headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Starlette re-raises the exception after this answer, so the server still logs it.
    return error_response(
        "server_error", "The server failed to answer this request; retry later", 500
    )


EXCEPTION_HANDLERS = {HTTPException: _http_exception, Exception: _unexpected}
