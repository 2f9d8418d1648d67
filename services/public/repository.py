"""Lookups of the public endpoints, each inside the tenant its path or opaque id names.

The public process has no caller: the tenant comes from the URL (a path segment, or the first
16 bytes of an opaque id), and every query runs in that tenant's read-only transaction under
row-level security, so nothing of one tenant is reachable through another's URLs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from credbatch.signing import opaque
from credbatch.signing.keys import published_jwks
from credbatch.signing.status_list import read_list
from credbatch.tenancy import service_scope, tenant_transaction


@dataclass(frozen=True)
class ClaimedCredential:
    tenant_id: uuid.UUID
    sd_jwt: str
    jwks: list[dict[str, Any]]


class PublicRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def _read(self, tenant_id: uuid.UUID) -> Any:
        return tenant_transaction(self._pool, service_scope(tenant_id), readonly=True)

    async def jwks(self, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
        async with self._read(tenant_id) as conn:
            return await published_jwks(conn, tenant_id)

    async def status_list(
        self, tenant_id: uuid.UUID, list_id: uuid.UUID
    ) -> tuple[bytes, int] | None:
        async with self._read(tenant_id) as conn:
            return await read_list(conn, tenant_id, list_id)

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
            sd_jwt = await conn.fetchval(
                "SELECT sd_jwt FROM credentials WHERE tenant_id = $1 AND claim_token = $2",
                tenant_id,
                claim_token,
            )
            if sd_jwt is None:
                return None
            jwks = await published_jwks(conn, tenant_id)
        return ClaimedCredential(tenant_id, sd_jwt, jwks)
