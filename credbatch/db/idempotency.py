"""AIP-155 request ids: a create retried with the same request_id gets the first result.

``idempotency_keys`` maps (tenant, kind, request_id) to the id of the resource the first
request created; row-level security makes the mapping per tenant. A claim is an INSERT in the
caller's own transaction, so the key commits or rolls back together with the resource it
names. Two concurrent requests with one key meet on the primary key: the second INSERT waits
until the first transaction ends, then either takes the key (the first rolled back) or, its
statement seeing the committed row, returns the first request's resource id.
"""

from __future__ import annotations

import uuid

import asyncpg

from credbatch.errors import FieldViolation, InvalidArgument

MAX_REQUEST_ID_CHARS = 200


def request_id_violation(request_id: str, field: str = "request_id") -> FieldViolation | None:
    """What is wrong with a request id, if anything (the table refuses longer ones)."""
    if len(request_id) > MAX_REQUEST_ID_CHARS:
        return FieldViolation(field, f"at most {MAX_REQUEST_ID_CHARS} characters", "TOO_LONG")
    return None


async def claim(
    conn: asyncpg.Connection,
    kind: str,
    request_id: str,
    resource_id: uuid.UUID,
    field: str = "request_id",
) -> uuid.UUID | None:
    """Record ``request_id`` -> ``resource_id`` for ``kind`` in this transaction.

    Returns:
        None when the key is now this transaction's (or request_id is empty: nothing to
        claim); otherwise the resource id an earlier request with this key created.

    Raises:
        InvalidArgument: naming ``field``, when the request id is too long.
    """
    if not request_id:
        return None
    violation = request_id_violation(request_id, field)
    if violation is not None:
        raise InvalidArgument(f"{field} is too long", violations=[violation])
    inserted = await conn.fetchval(
        """
        INSERT INTO idempotency_keys (tenant_id, kind, request_id, resource_id)
        VALUES (app_tenant(), $1, $2, $3)
        ON CONFLICT DO NOTHING
        RETURNING resource_id
        """,
        kind,
        request_id,
        resource_id,
    )
    if inserted is not None:
        return None
    return await find(conn, kind, request_id)


async def find(conn: asyncpg.Connection, kind: str, request_id: str) -> uuid.UUID | None:
    """The resource an earlier request with this key created, if any."""
    found: uuid.UUID | None = await conn.fetchval(
        "SELECT resource_id FROM idempotency_keys WHERE kind = $1 AND request_id = $2",
        kind,
        request_id,
    )
    return found
