"""Lookups of the public endpoints, each inside the tenant its path or opaque id names.

The public process has no caller: the tenant comes from the URL (a path segment, or the first
16 bytes of an opaque id). It connects as its own role (``credbatch_public``), which has no
table: each lookup is one SECURITY DEFINER function (``credbatch/db/functions/public_*.sql``)
given that tenant and the id or token, answering exactly what the route hands out, so nothing
of one tenant is reachable through another's URLs, and a foothold in this process reaches no
recipient's contact data, no wrapped key and no webhook secret.

Nothing here can sign or decrypt: status list tokens are read as the workers stored them.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from credbatch.batches.claim_mode import ClaimMode
from credbatch.signing import opaque
from credbatch.tenants.display import IssuerDisplay, issuer_display
from credbatch.tenants.profile import TenantProfile, logo_url

_JWKS = "SELECT public_issuer_jwks($1) AS jwk"
_STATUS_LIST = "SELECT token, expires_at FROM public_status_list_token($1, $2)"
_CERTIFICATE = "SELECT revoked, pdf FROM public_certificate($1, $2)"
_CLAIM = "SELECT * FROM public_claim($1, $2)"
_CLAIM_GONE = "SELECT public_claim_gone($1, $2)"
_PROFILE = "SELECT * FROM public_tenant_profile($1)"
_LOGO = "SELECT logo, logo_media_type FROM public_tenant_logo($1, $2)"
_TYPE_METADATA = "SELECT document FROM public_type_metadata($1, $2, $3)"


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A list's stored token; ``token`` is None until it is first signed."""

    token: str | None
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredCertificate:
    """A certificate as ``/c/{id}`` serves it; a revoked record's ``pdf`` is None (the
    database does not hand it out)."""

    revoked: bool
    pdf: bytes | None


@dataclass(frozen=True)
class ClaimedCredential:
    """What a claim link shows: the credential and what its page says beside it."""

    tenant_id: uuid.UUID
    sd_jwt: str
    jwks: list[dict[str, Any]]
    claim_expires_at: datetime
    claim_mode: ClaimMode
    revoked: bool
    schema_name: str
    # The batch invites by email and SMS: the SMS carries the offer's transaction code.
    asks_tx_code: bool
    # The record's current offer (ResendInvitations replaces it with the next generation).
    offer_generation: int


class PublicRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        """``pool`` connects as the public endpoints' role."""
        self._pool = pool

    async def jwks(self, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
        """Every key of the tenant (active or retired) as public JWKs, for the issuer metadata."""
        rows = await self._pool.fetch(_JWKS, tenant_id)
        return [dict(row["jwk"]) for row in rows]

    async def status_list_token(
        self, tenant_id: uuid.UUID, list_id: uuid.UUID
    ) -> StoredToken | None:
        """The stored token of a list, or None when the tenant has no such list."""
        row = await self._pool.fetchrow(_STATUS_LIST, tenant_id, list_id)
        if row is None:
            return None
        return StoredToken(row["token"], row["expires_at"])

    async def certificate(self, certificate_id: str) -> StoredCertificate | None:
        """The certificate, or None when the tenant its id names has no such certificate."""
        tenant_id = opaque.tenant_of(certificate_id)
        if tenant_id is None:
            return None
        row = await self._pool.fetchrow(_CERTIFICATE, tenant_id, certificate_id)
        if row is None:
            return None
        pdf = row["pdf"]
        return StoredCertificate(row["revoked"], bytes(pdf) if pdf is not None else None)

    async def claim_replaced(self, claim_token: str) -> bool:
        """Whether the claim token was replaced by a contact correction (then 410, not 404)."""
        tenant_id = opaque.tenant_of(claim_token)
        if tenant_id is None:
            return False
        digest = hashlib.sha256(claim_token.encode()).digest()
        replaced: bool = await self._pool.fetchval(_CLAIM_GONE, tenant_id, digest)
        return replaced

    async def credential(self, claim_token: str) -> ClaimedCredential | None:
        tenant_id = opaque.tenant_of(claim_token)
        if tenant_id is None:
            return None
        row = await self._pool.fetchrow(_CLAIM, tenant_id, claim_token)
        if row is None:
            return None
        return ClaimedCredential(
            tenant_id,
            row["sd_jwt"],
            await self.jwks(tenant_id),
            row["claim_expires_at"],
            ClaimMode(row["claim_mode"]),
            row["revoked"],
            row["schema_name"],
            row["asks_tx_code"],
            row["offer_generation"],
        )

    async def display(self, tenant_id: uuid.UUID, public_url: str) -> IssuerDisplay:
        """What holders see of the tenant; the platform's defaults when it has no profile."""
        row = await self._pool.fetchrow(_PROFILE, tenant_id)
        if row is None:
            return IssuerDisplay()
        profile = TenantProfile(
            display_name=row["display_name"],
            localized_display_names=dict(row["display_names"]),
            primary_color=row["primary_color"],
            background_color=row["background_color"],
            support_email=row["support_email"],
            support_url=row["support_url"],
            default_locale=row["default_locale"],
        )
        digest = row["logo_sha256"]
        if digest is None:
            return issuer_display(profile)
        sha256 = bytes(digest).hex()
        return issuer_display(
            profile,
            logo_uri=logo_url(public_url, tenant_id, sha256, row["logo_media_type"]),
            logo_sha256=sha256,
        )

    async def logo(self, tenant_id: uuid.UUID, sha256: bytes) -> tuple[bytes, str] | None:
        """The tenant's current logo and its media type, if its digest is ``sha256``."""
        row = await self._pool.fetchrow(_LOGO, tenant_id, sha256)
        if row is None:
            return None
        return bytes(row["logo"]), row["logo_media_type"]

    async def type_metadata(
        self, tenant_id: uuid.UUID, schema_id: uuid.UUID, version: int
    ) -> bytes | None:
        """The stored type metadata document of a schema version (None before it is issued)."""
        document = await self._pool.fetchval(_TYPE_METADATA, tenant_id, schema_id, version)
        return None if document is None else bytes(document)
