"""The stored type metadata of schema versions, inside the caller's tenant transaction.

Written by the first issuance of a version and never changed (the table grants no UPDATE):
two workers issuing the first records of one version at once both try, one insert wins, and
both go on with the winner's integrity, so every credential of the version carries the same.
"""

from __future__ import annotations

import uuid

import asyncpg

from credbatch.errors import Aborted
from credbatch.tenants import type_metadata

_STORED = """
SELECT integrity FROM schema_type_metadata WHERE schema_id = $1 AND version = $2
"""
_INSERT = """
INSERT INTO schema_type_metadata (tenant_id, schema_id, version, document, integrity)
VALUES (app_tenant(), $1, $2, $3, $4)
ON CONFLICT DO NOTHING
RETURNING integrity
"""


async def stored_integrity(
    conn: asyncpg.Connection, schema_id: uuid.UUID, version: int
) -> str | None:
    """The integrity of the version's stored document; None before its first issuance."""
    found: str | None = await conn.fetchval(_STORED, schema_id, version)
    return found


async def freeze(
    conn: asyncpg.Connection, schema_id: uuid.UUID, version: int, document: bytes
) -> str:
    """Store ``document`` as the version's type metadata unless one is stored already; the
    integrity of whichever is stored."""
    inserted: str | None = await conn.fetchval(
        _INSERT, schema_id, version, document, type_metadata.integrity(document)
    )
    if inserted is not None:
        return inserted
    # The conflicting insert committed before ours gave up, so a new statement sees its row.
    existing = await stored_integrity(conn, schema_id, version)
    if existing is None:
        raise Aborted(
            "the schema version's type metadata was being written concurrently; retry",
            reason="TYPE_METADATA_CONFLICT",
            retry_delay=0.1,
        )
    return existing
