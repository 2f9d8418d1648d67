"""The public Starlette application: issuer metadata, status lists, certificates, claim pages.

Internet-facing and unauthenticated, so it holds as little as it can: its database role
reaches only the functions that answer its routes (``repository``), and it holds no key
(status list tokens are signed and stored by the issuance workers). Every response carries
the security headers of ``headers``, every client is rate limited (``ratelimit``), the
client being the address ``client_address`` decided, behind a trusted proxy or not, and every
error is the JSON of ``errors``. ``openapi.yaml`` describes every route, served at
``/openapi.yaml``.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from credbatch.batches.claim_mode import ClaimMode
from credbatch.delivery import twilio
from credbatch.env_values import Network
from credbatch.server.health import postgres_check
from credbatch.server.http_readiness import CachedReadiness, probe_routes
from credbatch.signing import sd_jwt
from credbatch.signing.jose import JoseError
from credbatch.signing.status_list import MEDIA_TYPE
from credbatch.tenants.profile import PNG, SVG
from services.public import claim_page, openapi
from services.public.certificate_page import certificate_response
from services.public.client_address import ClientAddress
from services.public.errors import EXCEPTION_HANDLERS, error_response, not_found
from services.public.headers import SecurityHeaders
from services.public.nonces import Nonces
from services.public.oid4vci_routes import oid4vci_routes
from services.public.ratelimit import CODE_BURST, CODE_RATE, RateLimit, TokenBuckets
from services.public.repository import PublicRepository
from services.public.signer_client import SignerClient
from services.public.sms_status import sms_status_routes

SD_JWT_MEDIA_TYPE = "application/dc+sd-jwt"
TYPE_METADATA_MEDIA_TYPE = "application/json"
_LOGO_FILE = re.compile(r"(?P<sha256>[0-9a-f]{64})\.(?P<extension>png|svg)")
_LOGO_EXTENSIONS = {PNG: "png", SVG: "svg"}
# A schema version in a vct: `v` and the number, as the workers write it.
_VERSION = re.compile(r"v([1-9][0-9]{0,8})")
# The vct the workers issue under: the issuer, the schema and its version.
_OWN_VCT = re.compile(
    r"(?P<origin>.+/tenants/[0-9a-f-]{36})"
    r"/schemas/(?P<schema>[0-9a-f-]{36})/v(?P<version>[1-9][0-9]{0,8})"
)


def _not_found() -> Response:
    return not_found("Nothing is published at this address: check the link")


def _replaced() -> Response:
    return error_response(
        "replaced",
        "This claim link no longer works: the issuer sent a new invitation to the holder",
        410,
    )


def _gone() -> Response:
    return error_response(
        "expired", "This claim link has expired: ask the issuer to send the credential again", 410
    )


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def create_app(
    pool: asyncpg.Pool,
    public_url: str,
    *,
    status_ttl: int = 300,
    rate: float = 20.0,
    burst: int = 40,
    signer: SignerClient | None = None,
    nonce_key: bytes | None = None,
    trusted_proxies: tuple[Network, ...] = (),
    sms_token: str | None = None,
) -> Starlette:
    """The application, on a ``pool`` of the public endpoints' role; ``status_ttl`` caps how
    long HTTP caches keep a status list token, ``rate`` and ``burst`` are each client's
    budget (requests per second, and at once), ``signer`` signs the credentials of the
    OID4VCI endpoints (without one they answer 503), ``nonce_key`` MACs their c_nonces
    (without one, a key drawn for this application: its nonces pass only here, which is
    enough for one process but not for replicas, so the process passes its setting);
    ``trusted_proxies`` are the networks whose ``X-Forwarded-For`` names the client (none:
    the peer is the client); ``sms_token`` is the SMS account's token, which signs the
    provider's status callbacks (without one they are all refused)."""
    repository = PublicRepository(pool)
    if signer is None:
        signer = SignerClient(httpx.AsyncClient(), None)

    async def issuer_metadata(request: Request) -> Response:
        tenant_id = _uuid(request.path_params["tenant"])
        if tenant_id is None:
            return _not_found()
        jwks = await repository.jwks(tenant_id)
        if not jwks:
            return _not_found()
        return JSONResponse(
            {"issuer": f"{public_url}/tenants/{tenant_id}", "jwks": {"keys": jwks}},
            headers={"Cache-Control": "public, max-age=300"},
        )

    async def status_list(request: Request) -> Response:
        tenant_id = _uuid(request.path_params["tenant"])
        list_id = _uuid(request.path_params["list_id"])
        if tenant_id is None or list_id is None:
            return _not_found()
        found = await repository.status_list_token(tenant_id, list_id)
        if found is None:
            return _not_found()
        now = datetime.now(UTC)
        if found.token is None or found.expires_at is None or found.expires_at <= now:
            # Not signed yet, or the workers have not refreshed it: a verifier would reject
            # an expired token, so say it is temporarily missing instead.
            return error_response(
                "temporarily_unavailable",
                "This status list is not signed yet; retry",
                503,
                **{"Retry-After": "5"},
            )
        max_age = min(status_ttl, int((found.expires_at - now).total_seconds()))
        return Response(
            found.token,
            media_type=MEDIA_TYPE,
            headers={"Cache-Control": f"public, max-age={max(0, max_age)}"},
        )

    async def certificate(request: Request) -> Response:
        found = await repository.certificate(request.path_params["id"])
        if found is None:
            return _not_found()
        return certificate_response(found)

    async def claim(request: Request) -> Response:
        token = request.path_params["token"]
        found = await repository.credential(token)
        if found is None:
            return _replaced() if await repository.claim_replaced(token) else _not_found()
        if found.claim_expires_at <= datetime.now(UTC):
            return _gone()
        try:
            verified = sd_jwt.verify(found.sd_jwt, found.jwks)
        except JoseError:
            return error_response(
                "server_error", "The stored credential does not verify; tell its issuer", 500
            )
        display = await repository.display(found.tenant_id, public_url)
        html = claim_page.render(
            type_metadata=await _type_metadata_of(found.tenant_id, verified.payload),
            public_url=public_url,
            tenant_id=found.tenant_id,
            claim_token=token,
            payload=verified.payload,
            claims=list(verified.disclosed.items()),
            schema_name=found.schema_name,
            claim_mode=found.claim_mode,
            asks_tx_code=found.asks_tx_code,
            revoked=found.revoked,
            offer_generation=found.offer_generation,
            display=display,
            accept_language=request.headers.get("accept-language", ""),
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store", "Vary": "Accept-Language"})

    async def _type_metadata_of(tenant_id: uuid.UUID, payload: dict[str, Any]) -> bytes | None:
        """The stored type metadata the credential's vct names, when it is one of ours."""
        match = _OWN_VCT.fullmatch(str(payload.get("vct", "")))
        if match is None or match["origin"] != f"{public_url}/tenants/{tenant_id}":
            return None
        schema_id = _uuid(match["schema"])
        if schema_id is None:
            return None
        return await repository.type_metadata(tenant_id, schema_id, int(match["version"]))

    async def logo(request: Request) -> Response:
        tenant_id = _uuid(request.path_params["tenant"])
        match = _LOGO_FILE.fullmatch(request.path_params["file"])
        if tenant_id is None or match is None:
            return _not_found()
        found = await repository.logo(tenant_id, bytes.fromhex(match["sha256"]))
        if found is None or _LOGO_EXTENSIONS[found[1]] != match["extension"]:
            return _not_found()
        content, media_type = found
        # The digest is in the URL: this address answers these bytes or nothing, for ever.
        return Response(
            content,
            media_type=media_type,
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )

    async def type_metadata(request: Request) -> Response:
        tenant_id = _uuid(request.path_params["tenant"])
        schema_id = _uuid(request.path_params["schema"])
        version = _VERSION.fullmatch(request.path_params["version"])
        if tenant_id is None or schema_id is None or version is None:
            return _not_found()
        document = await repository.type_metadata(tenant_id, schema_id, int(version[1]))
        if document is None:
            return _not_found()
        # Credentials carry the digest of exactly these bytes (vct#integrity); they never
        # change for the version, so caches may keep them for ever.
        return Response(
            document,
            media_type=TYPE_METADATA_MEDIA_TYPE,
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )

    async def claim_credential(request: Request) -> Response:
        token = request.path_params["token"]
        found = await repository.credential(token)
        if found is None:
            return _replaced() if await repository.claim_replaced(token) else _not_found()
        if found.claim_expires_at <= datetime.now(UTC):
            return _gone()
        if found.revoked:
            return error_response("revoked", "Its issuer has revoked this credential", 410)
        if found.claim_mode is not ClaimMode.DOWNLOAD:
            # Wallet batches: a bearer copy, bound to no key, is not handed out.
            return error_response(
                "wallet_only", "This credential is claimed with a wallet, from the claim page", 410
            )
        return Response(
            found.sd_jwt, media_type=SD_JWT_MEDIA_TYPE, headers={"Cache-Control": "no-store"}
        )

    return Starlette(
        routes=[
            Route("/.well-known/jwt-vc-issuer/tenants/{tenant}", issuer_metadata),
            Route("/tenants/{tenant}/statuslists/{list_id}", status_list),
            Route("/tenants/{tenant}/logo/{file}", logo),
            Route("/tenants/{tenant}/schemas/{schema}/{version}", type_metadata),
            Route("/c/{id}", certificate),
            Route("/claim/{token}", claim),
            Route(claim_page.STYLESHEET_PATH, claim_page.stylesheet),
            Route(claim_page.THEME_PATH, claim_page.theme),
            Route("/claim/{token}/credential", claim_credential),
            *oid4vci_routes(
                pool,
                public_url,
                signer,
                Nonces(nonce_key or secrets.token_bytes(32)),
                TokenBuckets(CODE_RATE, CODE_BURST),
            ),
            *sms_status_routes(pool, public_url, sms_token),
            Route(openapi.PATH, openapi.document),
            # Kubernetes' probes: readiness follows the database through this pool.
            *probe_routes(CachedReadiness([postgres_check(pool)])),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        # Outermost first: the client is decided before anything reads it, and a 429 carries
        # the security headers too.
        middleware=[
            Middleware(ClientAddress, trusted=trusted_proxies),
            Middleware(SecurityHeaders),
            Middleware(
                RateLimit,
                buckets=TokenBuckets(rate, burst),
                exempt=frozenset({twilio.STATUS_PATH}),
            ),
        ],
    )
