"""The OID4VCI endpoints of every tenant's issuer: metadata, offer, token, nonce, credential.

Pre-authorized code flow: the invitation carries ``openid-credential-offer://`` with the
``credential_offer_uri`` of the record's offer; the wallet fetches the offer, exchanges its
pre-authorized code (and the transaction code when one was sent) once for a short-lived
access token bound to the record, fetches a ``c_nonce``, and requests the credential with a
key proof. The credential is signed by the internal signer, bound to the proof's key; the
record then becomes CLAIMED. Errors are the JSON ``{"error": ...}`` of RFC 6749 (token) and
RFC 6750 / OpenID4VCI (credential).
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.public.oid4vci_metadata import (
    PRE_AUTHORIZED_GRANT,
    authorization_server_metadata,
    issuer_id,
    issuer_metadata,
)
from services.public.oid4vci_proof import ProofError, check_proof
from services.public.oid4vci_store import Exchange, Oid4vciStore
from services.public.ratelimit import TokenBuckets, slow_down
from services.public.signer_client import SignerClient, SignerUnavailable

_MAX_BODY = 64 * 1024
_MAX_FORM = 4 * 1024
_TX_CODE_LENGTH = 6


def _error(error: str, status: int = 400, **headers: str) -> Response:
    return JSONResponse({"error": error}, status_code=status, headers=headers or None)


def _invalid_token() -> Response:
    return _error("invalid_token", 401, **{"WWW-Authenticate": 'Bearer error="invalid_token"'})


def _tenant(request: Request) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.path_params["tenant"])
    except ValueError:
        return None


def _form(body: bytes) -> dict[str, str] | None:
    """An ``application/x-www-form-urlencoded`` body; None when malformed or a name repeats
    (RFC 6749 forbids repeated parameters)."""
    if len(body) > _MAX_FORM:
        return None
    try:
        pairs = parse_qsl(body.decode("ascii"), strict_parsing=bool(body), max_num_fields=16)
    except (UnicodeDecodeError, ValueError):
        return None
    form = dict(pairs)
    return form if len(form) == len(pairs) else None


def oid4vci_routes(
    pool: Any, public_url: str, signer: SignerClient, code_attempts: TokenBuckets
) -> list[Route]:
    """The routes, mounted by the public application; ``code_attempts`` limits the exchanges
    of each pre-authorized code, whatever address they come from."""
    store = Oid4vciStore(pool)

    async def credential_issuer(request: Request) -> Response:
        tenant = _tenant(request)
        configurations = await store.configurations(tenant) if tenant else []
        if tenant is None or not configurations:
            return JSONResponse({"error": "not_found"}, status_code=404)
        issuer = issuer_id(public_url, tenant)
        return JSONResponse(issuer_metadata(issuer, configurations))

    async def authorization_server(request: Request) -> Response:
        tenant = _tenant(request)
        if tenant is None or not await store.configurations(tenant):
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse(authorization_server_metadata(issuer_id(public_url, tenant)))

    async def offer(request: Request) -> Response:
        tenant = _tenant(request)
        code = request.path_params["code"]
        found = await store.offer(tenant, code) if tenant and len(code) <= 128 else None
        if tenant is None or found is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        if found.revoked:
            return JSONResponse({"error": "revoked"}, status_code=410)
        grant: dict[str, Any] = {"pre-authorized_code": code}
        if found.asks_tx_code:
            grant["tx_code"] = {
                "input_mode": "numeric",
                "length": _TX_CODE_LENGTH,
                "description": "The code sent to you by SMS",
            }
        return JSONResponse(
            {
                "credential_issuer": issuer_id(public_url, tenant),
                "credential_configuration_ids": [found.configuration_id],
                "grants": {PRE_AUTHORIZED_GRANT: grant},
            }
        )

    async def token(request: Request) -> Response:
        tenant = _tenant(request)
        if tenant is None:
            return _error("invalid_grant")
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return _error("invalid_request")
        form = _form(await request.body())
        if form is None:
            return _error("invalid_request")
        grant_type = form.get("grant_type")
        code = form.get("pre-authorized_code")
        tx_code = form.get("tx_code")
        if grant_type != PRE_AUTHORIZED_GRANT:
            return _error("unsupported_grant_type" if grant_type else "invalid_request")
        if not isinstance(code, str) or not code or len(code) > 128:
            return _error("invalid_request")
        wait = code_attempts.take(f"{tenant}/{code}")
        if wait > 0:
            return slow_down(wait)
        outcome, access_token = await store.exchange(tenant, code, tx_code)
        if outcome in (Exchange.TX_CODE_MISSING, Exchange.TX_CODE_UNEXPECTED):
            return _error("invalid_request")
        if outcome is not Exchange.GRANTED or access_token is None:
            return _error("invalid_grant")
        # Five minutes, as public_offer_exchange stores it.
        return JSONResponse(
            {"access_token": access_token, "token_type": "Bearer", "expires_in": 300}
        )

    async def nonce(request: Request) -> Response:
        tenant = _tenant(request)
        fresh = await store.new_nonce(tenant) if tenant else None
        if fresh is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse({"c_nonce": fresh})

    async def credential(request: Request) -> Response:
        tenant = _tenant(request)
        authorization = request.headers.get("authorization", "")
        scheme, _, access_token = authorization.partition(" ")
        if tenant is None or scheme.lower() != "bearer" or not access_token:
            return _invalid_token()
        access_token = access_token.strip()
        grant = await store.grant(tenant, access_token)
        if grant is None:
            return _invalid_token()
        body = await request.body()
        try:
            data = orjson.loads(body) if len(body) <= _MAX_BODY else None
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            return _error("invalid_credential_request")
        if "credential_configuration_id" not in data or "credential_identifier" in data:
            return _error("invalid_credential_request")
        if data["credential_configuration_id"] != grant.configuration_id:
            return _error("unknown_credential_configuration")
        proofs = data.get("proofs")
        if "proof" in data or not isinstance(proofs, dict) or set(proofs) != {"jwt"}:
            return _error("invalid_proof")
        jwts = proofs["jwt"]
        # No batch issuance is advertised: one key, one credential.
        if not isinstance(jwts, list) or len(jwts) != 1:
            return _error("invalid_proof")
        issuer = issuer_id(public_url, tenant)
        try:
            proof = check_proof(jwts[0], audience=issuer, now=time.time())
        except ProofError:
            return _error("invalid_proof")
        if not await store.use_nonce(tenant, proof.nonce):
            return _error("invalid_nonce")
        try:
            issued = await signer.bound_credential(tenant, grant.record_id, proof.holder_jwk)
        except SignerUnavailable:
            return _error("server_error", 503, **{"Retry-After": "5"})
        if issued is None:
            return _error("credential_request_denied")
        await store.mark_claimed(tenant, access_token)
        return JSONResponse({"credentials": [{"credential": issued}]})

    prefix = "/tenants/{tenant}"
    return [
        Route("/.well-known/openid-credential-issuer" + prefix, credential_issuer),
        Route(prefix + "/.well-known/openid-credential-issuer", credential_issuer),
        Route("/.well-known/oauth-authorization-server" + prefix, authorization_server),
        Route(prefix + "/offers/{code}", offer),
        Route(prefix + "/token", token, methods=["POST"]),
        Route(prefix + "/nonce", nonce, methods=["POST"]),
        Route(prefix + "/credential", credential, methods=["POST"]),
    ]
