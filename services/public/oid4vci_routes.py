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

Every metadata document is served at each place a wallet of OpenID4VCI 1.0 or of an earlier
draft looks for it (``oid4vci_metadata``).
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

from services.public.errors import error_response, not_found
from services.public.nonces import Nonces
from services.public.oid4vci_metadata import (
    AUTHORIZATION_SERVER_PATHS,
    CREDENTIAL_ISSUER_PATHS,
    PRE_AUTHORIZED_GRANT,
    authorization_server_metadata,
    issuer_id,
    issuer_metadata,
)
from services.public.oid4vci_proof import ProofError, check_proof
from services.public.oid4vci_store import Exchange, Grant, Oid4vciStore
from services.public.ratelimit import TokenBuckets, slow_down
from services.public.repository import PublicRepository
from services.public.signer_client import SignerClient, SignerUnavailable

_MAX_BODY = 64 * 1024
_MAX_FORM = 4 * 1024
_MAX_ACCESS_TOKEN = 512
_TX_CODE_LENGTH = 6
_UNKNOWN_CODE = (
    "The pre-authorized code is unknown to this issuer, already redeemed, expired or withdrawn"
)


def _error(error: str, description: str, status: int = 400, **headers: str) -> Response:
    return error_response(error, description, status, **headers)


def _invalid_token(
    description: str = (
        "Send the access token of this issuer's token endpoint as 'Authorization: Bearer"
        " <token>'; this one is missing, unknown, expired or of another issuer"
    ),
) -> Response:
    return _error(
        "invalid_token", description, 401, **{"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


_UNUSABLE_GRANT = (
    "the access token is unknown, expired or already used (an access token obtains one "
    "credential); exchange a new credential offer at the token endpoint"
)


# The SD-JWT VC format identifiers of drafts 13-15 (vc+sd-jwt) and of 1.0 (dc+sd-jwt).
_SD_JWT_FORMATS = frozenset({"vc+sd-jwt", "dc+sd-jwt"})


def _requested_configuration(data: dict[str, Any], issuer: str, grant: Grant) -> str | None:
    """The credential configuration a request names: 1.0's ``credential_configuration_id``,
    or the ``format`` and ``vct`` of drafts 13-15 (the grant's configuration when its type
    matches, an empty string when not); None when it names none it can."""
    if "credential_identifier" in data:
        return None
    if "credential_configuration_id" in data:
        named = data["credential_configuration_id"]
        return named if isinstance(named, str) else ""
    if data.get("format") in _SD_JWT_FORMATS and isinstance(data.get("vct"), str):
        return grant.configuration_id if data["vct"] == issuer + grant.type_path else ""
    return None


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


_NO_ISSUER = "No credential issuer at this address: the tenant is unknown or issues nothing"


def _tenant(request: Request) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.path_params["tenant"])
    except ValueError:
        return None


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it exceeds ``limit`` bytes (read no further, so
    an endless body costs no memory)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _form(body: bytes) -> dict[str, str] | None:
    """An ``application/x-www-form-urlencoded`` body; None when malformed or a name repeats
    (RFC 6749 forbids repeated parameters)."""
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
    profiles = PublicRepository(pool)

    async def credential_issuer(request: Request) -> Response:
        tenant = _tenant(request)
        configurations = await store.configurations(tenant) if tenant else []
        if tenant is None or not configurations:
            return not_found(_NO_ISSUER)
        issuer = issuer_id(public_url, tenant)
        display = await profiles.display(tenant, public_url)
        return JSONResponse(issuer_metadata(issuer, configurations, display))

    async def authorization_server(request: Request) -> Response:
        tenant = _tenant(request)
        if tenant is None or not await store.configurations(tenant):
            return not_found(_NO_ISSUER)
        return JSONResponse(authorization_server_metadata(issuer_id(public_url, tenant)))

    async def offer(request: Request) -> Response:
        tenant = _tenant(request)
        code = request.path_params["code"]
        found = await store.offer(tenant, code) if tenant and len(code) <= 128 else None
        if tenant is None or found is None:
            return not_found(
                "No such credential offer: it was already redeemed, has expired or never"
                " existed; ask the issuer for a new one"
            )
        if found.revoked:
            return error_response(
                "revoked", "The issuer has revoked this credential: its offer is withdrawn", 410
            )
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
            return _error("invalid_grant", _UNKNOWN_CODE)
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return _error(
                "invalid_request", "Send the token request as application/x-www-form-urlencoded"
            )
        body = await _bounded_body(request, _MAX_FORM)
        if body is None:
            return _error(
                "invalid_request", f"The token request body exceeds {_MAX_FORM} bytes", 413
            )
        form = _form(body)
        if form is None:
            return _error(
                "invalid_request",
                "The form body is malformed: ASCII name=value pairs joined by '&', at most 16,"
                " no parameter repeated",
            )
        grant_type = form.get("grant_type")
        code = form.get("pre-authorized_code")
        tx_code = form.get("tx_code")
        if not grant_type:
            return _error("invalid_request", f"grant_type is required: {PRE_AUTHORIZED_GRANT}")
        if grant_type != PRE_AUTHORIZED_GRANT:
            return _error(
                "unsupported_grant_type",
                f"This issuer grants only the pre-authorized code flow: {PRE_AUTHORIZED_GRANT}",
            )
        if not code or len(code) > 128:
            return _error(
                "invalid_request",
                "pre-authorized_code is required: the code of the credential offer"
                " (at most 128 characters)",
            )
        wait = code_attempts.take(f"{tenant}/{code}")
        if wait > 0:
            return slow_down(wait)
        outcome, access_token = await store.exchange(tenant, code, tx_code)
        if outcome is Exchange.TX_CODE_MISSING:
            return _error(
                "invalid_request",
                "tx_code is required: this offer asks for the transaction code sent to the"
                " holder on another channel",
            )
        if outcome is Exchange.TX_CODE_UNEXPECTED:
            return _error("invalid_request", "This offer has no transaction code: omit tx_code")
        if outcome is Exchange.TX_CODE_WRONG:
            return _error(
                "invalid_grant",
                "tx_code is wrong; after too many wrong codes the offer is withdrawn",
            )
        if outcome is not Exchange.GRANTED or access_token is None:
            return _error("invalid_grant", _UNKNOWN_CODE)
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
            return not_found(_NO_ISSUER)
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
                "invalid_credential_request",
                f"The body must be a JSON object of at most {_MAX_BODY} bytes",
            )
        issuer = issuer_id(public_url, tenant)
        requested = _requested_configuration(data, issuer, grant)
        if requested is None:
            return _error(
                "invalid_credential_request",
                "Name the credential by credential_configuration_id, or (drafts 13-15) by"
                f" format ({' or '.join(sorted(_SD_JWT_FORMATS))}) and vct;"
                " credential_identifier is not used by this issuer",
            )
        if requested != grant.configuration_id:
            return _error(
                "unknown_credential_configuration",
                "credential_configuration_id is not the one of the offer this token was"
                " granted for",
            )
        if "proof" in data and "proofs" in data:
            return _error("invalid_credential_request", "Send proofs or proof, not both")
        jwts = _proof_jwts(data)
        if isinstance(jwts, str):
            return _error("invalid_proof", jwts)
        # No batch issuance is advertised: one key, one credential.
        if len(jwts) != 1:
            return _error("invalid_proof", "Send exactly one key proof")
        try:
            proof = check_proof(jwts[0], audience=issuer, now=time.time())
        except ProofError as error:
            # The checks' messages name what is wrong, never a value of the proof.
            return _error("invalid_proof", f"The key proof is invalid: {error}")
        fresh = nonces.check(tenant, proof.nonce, time.time())
        if fresh is None:
            return _error(
                "invalid_nonce",
                "The proof's nonce is not a current c_nonce of this issuer: fetch a fresh one"
                " from the nonce endpoint",
            )
        if not await store.use_nonce(tenant, fresh):
            return _error(
                "invalid_nonce",
                "The proof's nonce was used before: fetch a fresh one from the nonce endpoint",
            )
        try:
            issued = await signer.bound_credential(
                tenant, grant.record_id, access_token, proof.holder_jwk
            )
        except SignerUnavailable:
            return _error(
                "server_error",
                "Signing is unavailable right now; retry",
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
        *(Route(path, credential_issuer) for path in CREDENTIAL_ISSUER_PATHS),
        *(Route(path, authorization_server) for path in AUTHORIZATION_SERVER_PATHS),
        Route(prefix + "/offers/{code}", offer),
        Route(prefix + "/token", token, methods=["POST"]),
        Route(prefix + "/nonce", nonce, methods=["POST"]),
        Route(prefix + "/credential", credential, methods=["POST"]),
    ]
