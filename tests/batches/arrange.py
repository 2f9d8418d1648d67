"""Arrange batches and records for batch tests directly as the owner (RLS does not apply).

Only for setting up data: the code under test always reads through the application role.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class Arranged:
    """A batch and its record ids, in row order."""

    tenant_id: uuid.UUID
    batch_id: uuid.UUID
    schema_id: uuid.UUID
    record_ids: list[uuid.UUID]


async def ensure_tenant(owner: asyncpg.Pool, tenant_id: uuid.UUID) -> uuid.UUID:
    """The tenant row and one schema (version 1); returns the schema id."""
    schema_id = uuid.uuid4()
    async with owner.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING", tenant_id)
        await conn.execute(
            "INSERT INTO credential_schemas (tenant_id, id, display_name, created_by)"
            " VALUES ($1, $2, $3, 'test')",
            tenant_id,
            schema_id,
            f"Schema {schema_id}",
        )
        await conn.execute(
            "INSERT INTO credential_schema_versions (tenant_id, schema_id, version, attributes,"
            " created_by) VALUES ($1, $2, 1, $3, 'test')",
            tenant_id,
            schema_id,
            [{"name": "name", "type": "STRING", "required": True}],
        )
    return schema_id


async def arrange_batch(
    owner: asyncpg.Pool,
    tenant_id: uuid.UUID,
    schema_id: uuid.UUID,
    *,
    creator: str,
    department: str = "default",
    states: Sequence[str] = ("PENDING",),
    emails: Sequence[str | None] | None = None,
    errors: Sequence[tuple[str | None, str | None]] | None = None,
    created_at: datetime | None = None,
    batch_state: str = "QUEUED",
    filename: str = "holders.csv",
) -> Arranged:
    """A batch with one record per entry of ``states`` (row numbers from 1)."""
    batch_id = uuid.uuid4()
    n = len(states)
    record_ids = [uuid.uuid4() for _ in range(n)]
    emails = emails if emails is not None else [f"holder{i}@example.org" for i in range(1, n + 1)]
    errors = errors if errors is not None else [(None, None)] * n
    async with owner.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            INSERT INTO batches (tenant_id, id, schema_id, schema_version, mediums, creator,
                                 department, filename, total_records, state, created_at)
            VALUES ($1, $2, $3, 1, ARRAY['EMAIL', 'SMS'], $4, $5, $6, $7, $8,
                    coalesce($9, clock_timestamp()))
            """,
            tenant_id,
            batch_id,
            schema_id,
            creator,
            department,
            filename,
            n,
            batch_state,
            created_at,
        )
        await conn.execute(
            """
            INSERT INTO records (tenant_id, id, batch_id, row_number, state, email, phone,
                                 error_code, error_message)
            SELECT $1, r.id, $2, r.n::int, r.state, r.email, '+15005550006', r.code, r.msg
            FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[])
                 WITH ORDINALITY AS r(id, state, email, code, msg, n)
            """,
            tenant_id,
            batch_id,
            record_ids,
            list(states),
            list(emails),
            [e[0] for e in errors],
            [e[1] for e in errors],
        )
    return Arranged(tenant_id, batch_id, schema_id, record_ids)
