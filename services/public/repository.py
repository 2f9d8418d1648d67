"""Lookups of the public endpoints, each inside the tenant its path or opaque id names.

The public process has no caller: the tenant comes from the URL (a path segment, or the first
16 bytes of an opaque id), and every query runs in that tenant's read-only transaction under
row-level security, so nothing of one tenant is reachable through another's URLs.

Nothing here can sign or decrypt: status list tokens are read as the workers stored them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from credbatch.signing import opaque
from credbatch.signing.jwks import published_jwks
from credbatch.signing.status_tokens import StoredToken, stored_token
from credbatch.tenancy import service_scope, tenant_transaction


@dataclass(frozen=True)
class ClaimedCredential:
    tenant_id: uuid.UUID
    sd_jwt: str
    jwks: list[dict[str, Any]]
    claim_expires_at: datetime


class PublicRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def _read(self, tenant_id: uuid.UUID) -> Any:
        return tenant_transaction(self._pool, service_scope(tenant_id), readonly=True)

    async def jwks(self, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
        async with self._read(tenant_id) as conn:
            return await published_jwks(conn, tenant_id)

    async def status_list_token(
        self, tenant_id: uuid.UUID, list_id: uuid.UUID
    ) -> StoredToken | None:
        async with self._read(tenant_id) as conn:
            return await stored_token(conn, tenant_id, list_id)

    async def certificate(self, certificate_id: str) -> bytes | None:
        tenant_id = opaque.tenant_of(certificate_id)
        if tenant_id is None:
            return None
        async with self._read(tenant_id) as conn:
            pdf = await conn.fetchval(
                "SELECT pdf FROM certificates WHERE tenant_id = $1 AND id = $2",
                tenant_id,
                certificate_id,
            )
        return bytes(pdf) if pdf is not None else None

    async def credential(self, claim_token: str) -> ClaimedCredential | None:
        tenant_id = opaque.tenant_of(claim_token)
        if tenant_id is None:
            return None
        async with self._read(tenant_id) as conn:
            row = await conn.fetchrow(
                "SELECT sd_jwt, claim_expires_at FROM credentials"
                " WHERE tenant_id = $1 AND claim_token = $2",
                tenant_id,
                claim_token,
            )
            if row is None:
                return None
            jwks = await published_jwks(conn, tenant_id)
        return ClaimedCredential(tenant_id, row["sd_jwt"], jwks, row["claim_expires_at"])
