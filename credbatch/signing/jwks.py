"""The public half of tenants' signing keys, for verifiers.

Separate from ``keys`` so that a process serving the issuer metadata (the public endpoints)
loads nothing that could decrypt a private key.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

_PUBLISHED = """
SELECT kid, alg, public_jwk FROM signing_keys WHERE tenant_id = $1 ORDER BY created_at, kid
"""


async def published_jwks(conn: asyncpg.Connection, tenant_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every key of the tenant (active or retired) as public JWKs, for the issuer metadata."""
    rows = await conn.fetch(_PUBLISHED, tenant_id)
    return [dict(row["public_jwk"]) for row in rows]
