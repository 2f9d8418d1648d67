"""The signer's HTTP API: one call, a holder-bound credential for one granted record.

The public endpoints are internet-facing and hold no key; this process holds the KEK and
signs for them. It listens on loopback (or a cluster-internal address) only and answers
only callers presenting the shared ``CREDBATCH_SIGNER_TOKEN``. That token alone signs
nothing: each request carries the wallet's access token, which the signer digests and spends
itself (``signer_grant_spend``): only an unexpired, unused token of that tenant naming that
record, an ISSUED or INVITED record of an OID4VCI batch, gets its stored credential signed.
So whoever holds the shared token (the public process, or anyone it leaks to) can sign no
more than wallets were granted, each grant once. Spending the grant, marking the record
CLAIMED and signing happen in one database transaction: the grant is spent exactly when a
credential leaves (a signing error rolls it back, and the grant stays usable). The claims come
from the stored credential; the caller chooses only the holder key, after checking the key
proof. Its database role has no table: it reaches the grant, the stored credential and the
tenant's wrapped key (``signer_signing_key``) through functions granted to it alone.

``POST /v1/bound-credentials`` with ``{"tenant_id", "record_id", "access_token",
"holder_jwk"}``: 200 ``{"credential": "<sd-jwt>"}``; 403 no live grant for the record (none,
expired, used, another record's or tenant's, record claimed or revoked); 400 bad input;
401 bad shared token; 500 the stored credential could not be signed again (the grant is not
spent).
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from credbatch.metrics import CLAIMS
from credbatch.server.health import postgres_check
from credbatch.server.http_readiness import CachedReadiness, probe_routes
from credbatch.signing.bound_credential import bind, holder_key
from credbatch.signing.jose import JoseError
from credbatch.signing.keys import KeyRing, NoSigningKey
from credbatch.signing.offer_codes import digest
from services.signer.protocol import BOUND_CREDENTIALS_PATH, NO_GRANT

log = logging.getLogger(__name__)

_MAX_BODY = 16 * 1024
_MAX_TOKEN = 512

_SPEND = "SELECT signer_grant_spend($1, $2, $3)"


class _SigningFailed(Exception):
    """Rolls the spending transaction back: no credential left, so the grant stays usable."""


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
            access_token = data["access_token"]
            holder_jwk = holder_key(data["holder_jwk"])
        except JoseError:
            return _error(400, "invalid holder key")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return _error(400, "invalid request")
        if not isinstance(access_token, str) or not 0 < len(access_token) <= _MAX_TOKEN:
            return _error(400, "invalid request")
        # Before the transaction: it holds a connection, and the key ring may need another.
        try:
            key = await keys.active_key(tenant_id)
        except NoSigningKey:
            return _error(403, NO_GRANT)
        try:
            async with pool.acquire() as conn, conn.transaction():
                stored = await conn.fetchval(_SPEND, tenant_id, digest(access_token), record_id)
                if stored is None:
                    return _error(403, NO_GRANT)
                try:
                    credential = bind(
                        stored,
                        holder_jwk,
                        key=key.private_key,
                        kid=key.kid,
                        issued_at=int(time.time()),
                    )
                except JoseError as error:
                    # The holder key was checked above: the stored credential does not parse.
                    raise _SigningFailed(type(error).__name__) from None
        except _SigningFailed as failure:
            log.error("signing a bound credential failed (%s); the grant stays usable", failure)
            return _error(500, "signing failed")
        CLAIMS.add(1)
        return JSONResponse({"credential": credential})

    return Starlette(
        routes=[
            Route(BOUND_CREDENTIALS_PATH, bound_credential, methods=["POST"]),
            # Kubernetes' probes (no token: they say nothing but up or not).
            *probe_routes(CachedReadiness([postgres_check(pool)])),
        ]
    )
