"""The OID4VCI endpoints of every tenant's issuer: metadata, offer, token, nonce, credential.

Pre-authorized code flow: the invitation carries ``openid-credential-offer://`` with the
``credential_offer_uri`` of the record's offer; the wallet fetches the offer, exchanges its
pre-authorized code (and the transaction code when one was sent) once for a short-lived
access token bound to the record, fetches a ``c_nonce``, and requests the credential with a
key proof. The credential is signed by the internal signer, bound to the proof's key; the
record then becomes CLAIMED. An access token obtains one credential: the signer spends it
(and claims the record) in the transaction in which it signs, so a second request with it,
or with another token of a record already CLAIMED, gets ``invalid_token``. Errors are the JSON
``{"error", "error_description"}`` of RFC 6749 (token) and RFC 6750 / OpenID4VCI
(credential).
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

from services.public.nonces import Nonces
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
_MAX_ACCESS_TOKEN = 512
_TX_CODE_LENGTH = 6


def _error(error: str, description: str, status: int = 400, **headers: str) -> Response:
    """An OAuth / OpenID4VCI error; ``description`` tells the integrator what to change (and
    holds no secret or personal data)."""
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers=headers or None,
    )


def _invalid_token(description: str) -> Response:
    return _error(
        "invalid_token", description, 401, **{"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


_UNUSABLE_GRANT = (
    "the access token is unknown, expired or already used (an access token obtains one "
    "credential); exchange a new credential offer at the token endpoint"
)


def _proof_jwts(data: dict[str, Any]) -> list[Any] | str:
    """The jwt key proofs of a credential request: 1.0's ``proofs`` or the singular ``proof``
    of drafts 13-15; a string says what is wrong."""
    if "proof" in data:
        proof = data["proof"]
        if not isinstance(proof, dict) or proof.get("proof_type") != "jwt" or "jwt" not in proof:
            return 'proof must be {"proof_type": "jwt", "jwt": "<key proof>"}'
        return [proof["jwt"]]
    proofs = data.get("proofs")
    if not isinstance(proofs, dict) or set(proofs) != {"jwt"}:
        return 'proofs must be {"jwt": ["<key proof>"]}; only jwt proofs are accepted'
    jwts = proofs["jwt"]
    if not isinstance(jwts, list):
        return "proofs.jwt must be a list of key proofs"
    return jwts


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
    pool: Any,
    public_url: str,
    signer: SignerClient,
    nonces: Nonces,
    code_attempts: TokenBuckets,
) -> list[Route]:
    """The routes, mounted by the public application; ``nonces`` makes and checks c_nonces,
    ``code_attempts`` limits the exchanges of each pre-authorized code, whatever address they
    come from."""
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
            return _error("invalid_grant", "the issuer in the URL is not a credbatch tenant")
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return _error(
                "invalid_request", "send the token request as application/x-www-form-urlencoded"
            )
        form = _form(await request.body())
        if form is None:
            return _error(
                "invalid_request", "the form is malformed, too large or repeats a parameter"
            )
        grant_type = form.get("grant_type")
        code = form.get("pre-authorized_code")
        tx_code = form.get("tx_code")
        if grant_type != PRE_AUTHORIZED_GRANT:
            return _error(
                "unsupported_grant_type" if grant_type else "invalid_request",
                f"grant_type must be {PRE_AUTHORIZED_GRANT}",
            )
        if not isinstance(code, str) or not code or len(code) > 128:
            return _error("invalid_request", "pre-authorized_code is required")
        wait = code_attempts.take(f"{tenant}/{code}")
        if wait > 0:
            return slow_down(wait)
        outcome, access_token = await store.exchange(tenant, code, tx_code)
        if outcome is Exchange.TX_CODE_MISSING:
            return _error("invalid_request", "this offer asks for tx_code: send it")
        if outcome is Exchange.TX_CODE_UNEXPECTED:
            return _error("invalid_request", "this offer asks for no tx_code: leave it out")
        if outcome is not Exchange.GRANTED or access_token is None:
            return _error(
                "invalid_grant",
                "the pre-authorized code or tx_code is wrong, or the offer is used, expired "
                "or revoked",
            )
        # Five minutes, as public_offer_exchange stores it.
        return JSONResponse(
            {"access_token": access_token, "token_type": "Bearer", "expires_in": 300}
        )

    async def nonce(request: Request) -> Response:
        # Answered without asking the database whether the tenant issues anything: the nonce
        # is a MAC, so an anonymous caller costs no row and no query, and a nonce of a tenant
        # that issues nothing buys nothing (no access token of it can exist). A cache of the
        # issuing tenants would only make the answer differ, not safer.
        tenant = _tenant(request)
        if tenant is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse(
            {"c_nonce": nonces.issue(tenant, time.time())},
            headers={"Cache-Control": "no-store"},
        )

    async def credential(request: Request) -> Response:
        tenant = _tenant(request)
        authorization = request.headers.get("authorization", "")
        scheme, _, access_token = authorization.partition(" ")
        access_token = access_token.strip()
        if tenant is None or scheme.lower() != "bearer" or not access_token:
            return _invalid_token("send the access token as Authorization: Bearer <token>")
        if len(access_token) > _MAX_ACCESS_TOKEN:
            return _invalid_token(_UNUSABLE_GRANT)
        grant = await store.grant(tenant, access_token)
        if grant is None:
            return _invalid_token(_UNUSABLE_GRANT)
        if grant.revoked:
            return _error("credential_request_denied", "the issuer revoked this credential")
        body = await request.body()
        try:
            data = orjson.loads(body) if len(body) <= _MAX_BODY else None
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            return _error(
                "invalid_credential_request", "the body must be a JSON object of at most 64 KiB"
            )
        if "credential_configuration_id" not in data or "credential_identifier" in data:
            return _error(
                "invalid_credential_request",
                "send credential_configuration_id (credential_identifier is not supported)",
            )
        if data["credential_configuration_id"] != grant.configuration_id:
            return _error(
                "unknown_credential_configuration",
                "credential_configuration_id must be the one the credential offer named",
            )
        if "proof" in data and "proofs" in data:
            return _error("invalid_credential_request", "send proofs or proof, not both")
        jwts = _proof_jwts(data)
        if isinstance(jwts, str):
            return _error("invalid_proof", jwts)
        # No batch issuance is advertised: one key, one credential.
        if len(jwts) != 1:
            return _error("invalid_proof", "send exactly one key proof")
        issuer = issuer_id(public_url, tenant)
        try:
            proof = check_proof(jwts[0], audience=issuer, now=time.time())
        except ProofError as error:
            return _error("invalid_proof", f"the key proof is invalid: {error}")
        fresh = nonces.check(tenant, proof.nonce, time.time())
        if fresh is None:
            return _error(
                "invalid_nonce",
                "the proof's nonce is not a current c_nonce of this issuer; fetch one at the "
                "nonce endpoint",
            )
        if not await store.use_nonce(tenant, fresh):
            return _error("invalid_nonce", "the proof's nonce was used before; fetch a new c_nonce")
        try:
            issued = await signer.bound_credential(
                tenant, grant.record_id, access_token, proof.holder_jwk
            )
        except SignerUnavailable:
            return _error(
                "server_error",
                "the credential cannot be signed now; retry",
                503,
                **{"Retry-After": "5"},
            )
        # The signer spends the grant and marks the record CLAIMED as it signs; it refuses a
        # token that a concurrent request spent first, or whose record changed meanwhile.
        if issued is None:
            return _invalid_token(_UNUSABLE_GRANT)
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
