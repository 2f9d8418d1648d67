"""The signer's HTTP API: one call, a holder-bound credential for one record.

The public endpoints are internet-facing and hold no key; this process holds the KEK and
signs for them. It listens on loopback (or a cluster-internal address) only and answers
only callers presenting the shared ``CREDBATCH_SIGNER_TOKEN``. It signs nothing a caller
makes up: the claims come from the record's stored credential, and the caller chooses only
the record (of an OID4VCI batch) and the holder key, after checking the access token and the
key proof. Its database role has no table: it reads the stored credential
(``signer_stored_credential``) and the tenant's wrapped key (``signer_signing_key``) through
functions granted to it alone.

``POST /v1/bound-credentials`` with ``{"tenant_id", "record_id", "holder_jwk"}``:
200 ``{"credential": "<sd-jwt>"}``; 404 no such credential, or it was revoked; 400 bad input;
401 bad token.
"""

from __future__ import annotations

import hmac
import time
import uuid
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from credbatch.signing.bound_credential import bind
from credbatch.signing.jose import JoseError
from credbatch.signing.keys import KeyRing
from services.signer.protocol import BOUND_CREDENTIALS_PATH

_MAX_BODY = 16 * 1024

# Of an OID4VCI batch only; a revoked record's credential is never signed again, whatever
# access token the caller holds.
_STORED = "SELECT signer_stored_credential($1, $2)"


def _error(status: int, error: str) -> Response:
    return JSONResponse({"error": error}, status_code=status)


def create_signer_app(pool: asyncpg.Pool, keys: KeyRing, token: str) -> Starlette:
    """The API on a ``pool`` of the signer's role, with a signer's ``keys`` ring on it."""
    expected = f"Bearer {token}".encode()

    async def bound_credential(request: Request) -> Response:
        presented = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(presented, expected):
            return _error(401, "unauthorized")
        body = await request.body()
        if len(body) > _MAX_BODY:
            return _error(400, "too large")
        try:
            data: Any = orjson.loads(body)
            tenant_id = uuid.UUID(str(data["tenant_id"]))
            record_id = uuid.UUID(str(data["record_id"]))
            holder_jwk = data["holder_jwk"]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return _error(400, "invalid request")
        stored = await pool.fetchval(_STORED, tenant_id, record_id)
        if stored is None:
            return _error(404, "no such credential")
        key = await keys.active_key(tenant_id)
        try:
            credential = bind(
                stored, holder_jwk, key=key.private_key, kid=key.kid, issued_at=int(time.time())
            )
        except JoseError:
            return _error(400, "invalid holder key")
        return JSONResponse({"credential": credential})

    return Starlette(routes=[Route(BOUND_CREDENTIALS_PATH, bound_credential, methods=["POST"])])
