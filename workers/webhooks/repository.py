"""The dispatcher's SQL: the cross-tenant claim, then each delivery in its tenant's scope.

Every result is written only while the delivery is still PENDING with the attempt count this
dispatcher claimed it at: if its lease ran out and another dispatcher claimed it again, the
older attempt's late result is dropped rather than overwriting the newer one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from credbatch.webhooks.sealing import Sealed

_CLAIM = "SELECT tenant_id, delivery_id FROM webhook_deliveries_claim($1, $2, $3)"


@dataclass(frozen=True)
class Claimed:
    tenant_id: uuid.UUID
    delivery_id: uuid.UUID


@dataclass(frozen=True)
class StoredSecret:
    """A live signing secret as stored: sealed, or None for one stored in plain text before
    secrets were sealed (``credbatch webhooks rewrap-secrets`` seals those)."""

    id: uuid.UUID
    sealed: Sealed | None


@dataclass(frozen=True)
class Job:
    """A claimed delivery with what sending it needs."""

    tenant_id: uuid.UUID
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: str
    attempt: int
    url: str
    endpoint_disabled: bool
    body: bytes
    secrets: tuple[StoredSecret, ...]


async def claim(
    pool: asyncpg.Pool, limit: int, per_endpoint: int, lease_seconds: float
) -> list[Claimed]:
    rows = await pool.fetch(_CLAIM, limit, per_endpoint, lease_seconds)
    return [Claimed(r["tenant_id"], r["delivery_id"]) for r in rows]


async def load(conn: asyncpg.Connection, delivery_id: uuid.UUID) -> Job | None:
    """The delivery if it is still PENDING; None when it was completed or deleted meanwhile."""
    row = await conn.fetchrow(
        """
        SELECT d.tenant_id, d.id, d.endpoint_id, d.event_id, d.attempts, e.url, e.disabled,
               ev.payload::text AS body
        FROM webhook_deliveries d
        JOIN webhook_endpoints e ON e.tenant_id = d.tenant_id AND e.id = d.endpoint_id
        JOIN webhook_events ev ON ev.tenant_id = d.tenant_id AND ev.id = d.event_id
        WHERE d.id = $1 AND d.state = 'PENDING'
        """,
        delivery_id,
    )
    if row is None:
        return None
    # Newest first: receivers that know only the new secret find theirs first.
    secrets = await conn.fetch(
        """
        SELECT id, secret_enc, nonce, kek_id FROM webhook_secrets
        WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > now())
        ORDER BY created_at DESC
        """,
        row["endpoint_id"],
    )
    return Job(
        tenant_id=row["tenant_id"],
        delivery_id=row["id"],
        endpoint_id=row["endpoint_id"],
        event_id=row["event_id"],
        attempt=row["attempts"],
        url=row["url"],
        endpoint_disabled=row["disabled"],
        body=row["body"].encode(),
        secrets=tuple(
            StoredSecret(
                s["id"],
                None
                if s["secret_enc"] is None
                else Sealed(bytes(s["secret_enc"]), bytes(s["nonce"]), s["kek_id"]),
            )
            for s in secrets
        ),
    )


async def lock_endpoint(conn: asyncpg.Connection, endpoint_id: uuid.UUID) -> None:
    """Take the endpoint's row lock first, as the claim does: a result written while another
    dispatcher claims for the same endpoint then waits instead of deadlocking with it."""
    await conn.execute("SELECT 1 FROM webhook_endpoints WHERE id = $1 FOR UPDATE", endpoint_id)


async def succeeded(conn: asyncpg.Connection, job: Job, status: int) -> None:
    await conn.execute(
        """
        UPDATE webhook_deliveries
        SET state = 'SUCCEEDED', completed_at = now(), leased_until = NULL,
            last_status_code = $3, last_error = ''
        WHERE id = $1 AND state = 'PENDING' AND attempts = $2
        """,
        job.delivery_id,
        job.attempt,
        status,
    )
    await conn.execute(
        "UPDATE webhook_endpoints SET failing_since = NULL "
        "WHERE id = $1 AND failing_since IS NOT NULL",
        job.endpoint_id,
    )


async def retry_later(
    conn: asyncpg.Connection, job: Job, status: int | None, error: str, delay: float
) -> None:
    await conn.execute(
        """
        UPDATE webhook_deliveries
        SET next_attempt_at = now() + $3, leased_until = NULL,
            last_status_code = $4, last_error = $5
        WHERE id = $1 AND state = 'PENDING' AND attempts = $2
        """,
        job.delivery_id,
        job.attempt,
        timedelta(seconds=delay),
        status or 0,
        error,
    )


async def failed(conn: asyncpg.Connection, job: Job, status: int | None, error: str) -> None:
    await conn.execute(
        """
        UPDATE webhook_deliveries
        SET state = 'FAILED', completed_at = now(), leased_until = NULL,
            last_status_code = $3, last_error = $4
        WHERE id = $1 AND state = 'PENDING' AND attempts = $2
        """,
        job.delivery_id,
        job.attempt,
        status or 0,
        error,
    )


async def failing_for(conn: asyncpg.Connection, endpoint_id: uuid.UUID) -> timedelta:
    """Note a failed attempt on the endpoint; how long it has been failing without a success."""
    span: timedelta = await conn.fetchval(
        """
        UPDATE webhook_endpoints SET failing_since = coalesce(failing_since, now())
        WHERE id = $1
        RETURNING now() - failing_since
        """,
        endpoint_id,
    )
    return span or timedelta(0)


async def disable(conn: asyncpg.Connection, endpoint_id: uuid.UUID, reason: str) -> None:
    """Disable the endpoint and fail its pending deliveries, saying why."""
    await conn.execute(
        """
        UPDATE webhook_endpoints
        SET disabled = true, disabled_reason = $2, updated_at = now()
        WHERE id = $1
        """,
        endpoint_id,
        reason,
    )
    await conn.execute(
        """
        UPDATE webhook_deliveries
        SET state = 'FAILED', completed_at = now(), leased_until = NULL,
            last_error = 'endpoint disabled: ' || $2
        WHERE endpoint_id = $1 AND state = 'PENDING'
        """,
        endpoint_id,
        reason,
    )
