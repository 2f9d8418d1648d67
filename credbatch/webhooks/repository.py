"""SQL of webhook endpoints, secrets and deliveries, inside the caller's tenant transaction.

Row-level security scopes every statement to the tenant, so an id of another tenant's row
matches nothing and reads as absent. Secrets are stored sealed (``credbatch.webhooks.sealing``);
their plain text leaves only in the answer to the call that created them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg

from credbatch.paging import PagePosition
from credbatch.webhooks.model import (
    Delivery,
    DeliveryState,
    Endpoint,
    EndpointChanges,
    EndpointDraft,
    EventType,
)
from credbatch.webhooks.sealing import NewSecret

_ENDPOINT_COLUMNS = """
id, url, event_types, description, disabled, disabled_reason, created_at, updated_at
"""
_DELIVERY_COLUMNS = """
d.id, d.endpoint_id, d.event_id, ev.type, d.state, d.attempts, d.last_status_code,
d.last_error, d.next_attempt_at, d.created_at, d.completed_at
"""


def _endpoint(row: asyncpg.Record, secret: str = "") -> Endpoint:
    return Endpoint(
        id=row["id"],
        url=row["url"],
        event_types=tuple(EventType(t) for t in row["event_types"]),
        description=row["description"],
        disabled=row["disabled"],
        disabled_reason=row["disabled_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        secret=secret,
    )


def _delivery(row: asyncpg.Record) -> Delivery:
    state = DeliveryState(row["state"])
    return Delivery(
        id=row["id"],
        endpoint_id=row["endpoint_id"],
        event_id=row["event_id"],
        event_type=EventType(row["type"]),
        state=state,
        attempts=row["attempts"],
        last_status_code=row["last_status_code"],
        last_error=row["last_error"],
        next_attempt_at=row["next_attempt_at"] if state is DeliveryState.PENDING else None,
        created_at=row["created_at"],
        completed_at=row["completed_at"],
    )


async def insert_endpoint(
    conn: asyncpg.Connection, endpoint_id: uuid.UUID, draft: EndpointDraft, secret: NewSecret
) -> Endpoint:
    row = await conn.fetchrow(
        f"""
        INSERT INTO webhook_endpoints (tenant_id, id, url, event_types, description, disabled)
        VALUES (app_tenant(), $1, $2, $3, $4, $5)
        RETURNING {_ENDPOINT_COLUMNS}
        """,
        endpoint_id,
        draft.url,
        [str(t) for t in draft.event_types],
        draft.description,
        draft.disabled,
    )
    await insert_secret(conn, endpoint_id, secret)
    return _endpoint(row, secret.secret)


async def insert_secret(
    conn: asyncpg.Connection, endpoint_id: uuid.UUID, secret: NewSecret
) -> None:
    """Store ``secret`` sealed; it must have been sealed for this transaction's tenant and
    ``endpoint_id`` (the associated data), or the dispatchers cannot open it."""
    await conn.execute(
        """
        INSERT INTO webhook_secrets (tenant_id, endpoint_id, id, secret_enc, nonce, kek_id)
        VALUES (app_tenant(), $1, $2, $3, $4, $5)
        """,
        endpoint_id,
        secret.id,
        secret.sealed.ciphertext,
        secret.sealed.nonce,
        secret.sealed.kek_id,
    )


async def get_endpoint(conn: asyncpg.Connection, endpoint_id: uuid.UUID) -> Endpoint | None:
    row = await conn.fetchrow(
        f"SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1", endpoint_id
    )
    return None if row is None else _endpoint(row)


async def list_endpoints(
    conn: asyncpg.Connection, after: PagePosition | None, limit: int
) -> list[Endpoint]:
    """Newest first, ``limit`` at most, strictly after ``after`` (webhook_endpoints_created_idx)."""
    rows = await conn.fetch(
        f"""
        SELECT {_ENDPOINT_COLUMNS} FROM webhook_endpoints
        WHERE tenant_id = app_tenant()
          AND ($1::timestamptz IS NULL OR (created_at, id) < ($1, $2))
        ORDER BY created_at DESC, id DESC
        LIMIT $3
        """,
        after.create_time if after else None,
        after.id if after else None,
        limit,
    )
    return [_endpoint(r) for r in rows]


async def update_endpoint(
    conn: asyncpg.Connection, endpoint_id: uuid.UUID, changes: EndpointChanges
) -> Endpoint | None:
    # Enabling by hand clears what credbatch recorded when it disabled the endpoint, and its
    # failure streak, so the five-day clock starts afresh.
    row = await conn.fetchrow(
        f"""
        UPDATE webhook_endpoints SET
          disabled = coalesce($2, disabled),
          disabled_reason = CASE WHEN $2 IS NOT NULL THEN '' ELSE disabled_reason END,
          failing_since = CASE WHEN $2 = false THEN NULL ELSE failing_since END,
          event_types = coalesce($3, event_types),
          description = coalesce($4, description),
          updated_at = now()
        WHERE id = $1
        RETURNING {_ENDPOINT_COLUMNS}
        """,
        endpoint_id,
        changes.disabled,
        None if changes.event_types is None else [str(t) for t in changes.event_types],
        changes.description,
    )
    return None if row is None else _endpoint(row)


async def delete_endpoint(conn: asyncpg.Connection, endpoint_id: uuid.UUID) -> bool:
    status: str = await conn.execute("DELETE FROM webhook_endpoints WHERE id = $1", endpoint_id)
    return status == "DELETE 1"


async def rotate_secret(
    conn: asyncpg.Connection, endpoint_id: uuid.UUID, secret: NewSecret, overlap: timedelta
) -> Endpoint | None:
    """Give the live secrets ``overlap`` more to live (no more than they had) and add ``secret``."""
    endpoint = await conn.fetchrow(
        f"""
        UPDATE webhook_endpoints SET updated_at = now() WHERE id = $1
        RETURNING {_ENDPOINT_COLUMNS}
        """,
        endpoint_id,
    )
    if endpoint is None:
        return None
    await conn.execute(
        """
        UPDATE webhook_secrets SET expires_at = least(coalesce(expires_at, 'infinity'), now() + $2)
        WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > now())
        """,
        endpoint_id,
        overlap,
    )
    await insert_secret(conn, endpoint_id, secret)
    return _endpoint(endpoint, secret.secret)


async def list_deliveries(
    conn: asyncpg.Connection,
    endpoint_id: uuid.UUID,
    state: DeliveryState | None,
    after: PagePosition | None,
    limit: int,
) -> list[Delivery]:
    """One endpoint's deliveries, newest first (webhook_deliveries_endpoint_idx)."""
    rows = await conn.fetch(
        f"""
        SELECT {_DELIVERY_COLUMNS}
        FROM webhook_deliveries d
        JOIN webhook_events ev ON ev.tenant_id = d.tenant_id AND ev.id = d.event_id
        WHERE d.tenant_id = app_tenant() AND d.endpoint_id = $1
          AND ($2::text IS NULL OR d.state = $2)
          AND ($3::timestamptz IS NULL OR (d.created_at, d.id) < ($3, $4))
        ORDER BY d.created_at DESC, d.id DESC
        LIMIT $5
        """,
        endpoint_id,
        None if state is None else str(state),
        after.create_time if after else None,
        after.id if after else None,
        limit,
    )
    return [_delivery(r) for r in rows]


async def redeliver(
    conn: asyncpg.Connection, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> Delivery | None:
    """A new PENDING delivery of the same event to the same endpoint, due now."""
    row = await conn.fetchrow(
        f"""
        WITH source AS (
          SELECT event_id FROM webhook_deliveries WHERE endpoint_id = $1 AND id = $2
        ), added AS (
          INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, event_id)
          SELECT app_tenant(), $3, $1, event_id FROM source
          RETURNING *
        )
        SELECT {_DELIVERY_COLUMNS}
        FROM added d
        JOIN webhook_events ev ON ev.tenant_id = d.tenant_id AND ev.id = d.event_id
        """,
        endpoint_id,
        delivery_id,
        uuid.uuid4(),
    )
    return None if row is None else _delivery(row)
