"""Pruning: each kind loses exactly what its period makes old enough, whatever its tenant, and a
second pass deletes nothing more."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from tests.fixtures.batches import insert_batch
from tests.fixtures.database import insert_row
from workers.janitor.janitor import AUDIT_KIND, PRUNE_KINDS, Periods, run_pass

DAY = timedelta(days=1)
# Passes run flat out: the default share (0.02) would rest 49 times as long as each step works,
# and pacing has tests of its own (test_share.py).
FLAT_OUT = 1.0
PERIODS = Periods(
    retention_days=30,
    audit_days=400,
    prune={
        "webhook_deliveries": 30 * DAY,
        "webhook_events": 30 * DAY,
        "spent_nonces": timedelta(hours=1),
        "offers": 7 * DAY,
        "access_tokens": DAY,
        "idempotency_keys": 7 * DAY,
        "dispatch": DAY,
        "send_stamps": 7 * DAY,
    },
)


def digest(label: str) -> bytes:
    return hashlib.sha256(f"{label}-{uuid.uuid4()}".encode()).digest()


async def _webhooks(owner: asyncpg.Pool, tenant: uuid.UUID) -> None:
    """Events 40 days old: one delivered, one failed, one still PENDING; one recent."""
    endpoint = uuid.uuid4()
    async with owner.acquire() as conn:
        await insert_row(
            conn,
            "webhook_endpoints",
            {
                "tenant_id": tenant,
                "id": endpoint,
                "url": "https://hooks.example.org/x",
                "event_types": ["record.failed"],
            },
        )
        for label, state, age in (
            ("old_ok", "SUCCEEDED", 40),
            ("old_failed", "FAILED", 40),
            ("old_pending", "PENDING", 40),
            ("new_ok", "SUCCEEDED", 1),
        ):
            event = "msg_" + hashlib.md5(f"{label}{tenant}".encode()).hexdigest()  # noqa: S324
            when = f"now() - interval '{age} days'"
            await conn.execute(
                "INSERT INTO webhook_events (tenant_id, id, type, payload, created_at)"
                f" VALUES ($1, $2, 'record.failed', '{{}}', {when})",
                tenant,
                event,
            )
            await conn.execute(
                "INSERT INTO webhook_deliveries (tenant_id, id, endpoint_id, event_id, state,"
                " created_at, completed_at) VALUES ($1, $2, $3, $4, $5, "
                f"{when}, CASE WHEN $5 = 'PENDING' THEN NULL ELSE {when} END)",
                tenant,
                uuid.uuid4(),
                endpoint,
                event,
                state,
            )


async def _oid4vci(owner: asyncpg.Pool, tenant: uuid.UUID) -> None:
    """Offers and tokens of three records: expired long ago (CLAIMED, its offer used, and
    INVITED, its offer never used), and live."""
    batch = await insert_batch(owner, tenant, states=("CLAIMED", "INVITED", "INVITED"))
    claimed, invited, live = batch.record_ids
    async with owner.acquire() as conn:
        for record, expired in ((claimed, True), (invited, True), (live, False)):
            expires = "now() - interval '10 days'" if expired else "now() + interval '1 day'"
            await conn.execute(
                "INSERT INTO oid4vci_offers (tenant_id, record_id, code_hash, expires_at, used_at)"
                f" VALUES ($1, $2, $3, {expires}, $4)",
                tenant,
                record,
                digest("code"),
                datetime.now(UTC) - timedelta(days=11) if record == claimed else None,
            )
            await conn.execute(
                "INSERT INTO oid4vci_access_tokens (tenant_id, token_hash, record_id, expires_at)"
                f" VALUES ($1, $2, $3, {expires})",
                tenant,
                digest("token"),
                record,
            )
        for hours in (-2, 1):
            await conn.execute(
                "INSERT INTO oid4vci_spent_nonces (tenant_id, nonce_hash, expires_at)"
                " VALUES ($1, $2, now() + make_interval(hours => $3))",
                tenant,
                digest("nonce"),
                hours,
            )
        for days in (8, 1):
            await conn.execute(
                "INSERT INTO idempotency_keys (tenant_id, kind, request_id, resource_id,"
                " created_at) VALUES ($1, 'batch', $2, $3, now() - make_interval(days => $4))",
                tenant,
                f"req-{days}",
                uuid.uuid4(),
                days,
            )


async def _left(owner: asyncpg.Pool, tenant: uuid.UUID) -> dict[str, object]:
    rows = await owner.fetchrow(
        """
        SELECT
          (SELECT array_agg(state ORDER BY state) FROM webhook_deliveries
           WHERE tenant_id = $1) AS deliveries,
          (SELECT count(*) FROM webhook_events WHERE tenant_id = $1) AS events,
          (SELECT array_agg(r.state ORDER BY r.state, o.expires_at) FROM oid4vci_offers o
           JOIN records r ON r.tenant_id = o.tenant_id AND r.id = o.record_id
           WHERE o.tenant_id = $1) AS offers,
          (SELECT count(*) FROM oid4vci_access_tokens WHERE tenant_id = $1) AS tokens,
          (SELECT count(*) FROM oid4vci_spent_nonces WHERE tenant_id = $1) AS nonces,
          (SELECT array_agg(request_id) FROM idempotency_keys WHERE tenant_id = $1) AS keys
        """,
        tenant,
    )
    assert rows is not None
    return dict(rows)


async def test_a_pass_prunes_what_is_due_and_a_second_pass_nothing(
    owner_pool: asyncpg.Pool, janitor_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    await owner_pool.execute("INSERT INTO tenants (id) VALUES ($1)", tenant)
    await _webhooks(owner_pool, tenant)
    await _oid4vci(owner_pool, tenant)

    first = await run_pass(janitor_pool, PERIODS, 1000, asyncio.Event(), share=FLAT_OUT)

    assert await _left(owner_pool, tenant) == {
        # The PENDING delivery keeps its event; the recent one is kept with its event.
        "deliveries": ["PENDING", "SUCCEEDED"],
        "events": 2,
        # An unused offer stays until its record's purge: a resend derives its successor from it.
        "offers": ["INVITED", "INVITED"],
        "tokens": 1,
        "nonces": 1,
        "keys": ["req-1"],
    }
    assert set(first.pruned) == {*PRUNE_KINDS, AUDIT_KIND}
    assert first.pruned["webhook_deliveries"] >= 2

    again = await run_pass(janitor_pool, PERIODS, 1000, asyncio.Event(), share=FLAT_OUT)
    assert all(n == 0 for n in again.pruned.values()), again.pruned
    assert again.purged == 0


async def test_small_steps_prune_the_same_as_one_large_one(
    owner_pool: asyncpg.Pool, janitor_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    await owner_pool.execute("INSERT INTO tenants (id) VALUES ($1)", tenant)
    await owner_pool.execute(
        "INSERT INTO idempotency_keys (tenant_id, kind, request_id, resource_id, created_at)"
        " SELECT $1, 'batch', 'old-' || i, gen_random_uuid(), now() - interval '9 days'"
        " FROM generate_series(1, 25) i",
        tenant,
    )

    result = await run_pass(janitor_pool, PERIODS, 4, asyncio.Event(), share=FLAT_OUT)

    assert result.pruned["idempotency_keys"] >= 25
    assert (
        await owner_pool.fetchval(
            "SELECT count(*) FROM idempotency_keys WHERE tenant_id = $1", tenant
        )
        == 0
    )


async def test_send_stamps_go_once_old_and_the_outcome_is_written(
    owner_pool: asyncpg.Pool, janitor_pool: asyncpg.Pool
) -> None:
    arranged = await insert_batch(owner_pool, states=["INVITED", "ISSUED", "INVITED"])
    invited, issued, recent = arranged.record_ids
    for record, days in ((invited, 8), (issued, 8), (recent, 1)):
        await owner_pool.execute(
            "INSERT INTO record_sends (tenant_id, record_id, medium, message_id, sent_at)"
            " VALUES ($1, $2, 'SMS', $3, now() - make_interval(days => $4))",
            arranged.tenant_id,
            record,
            f"SM{uuid.uuid4().hex}",
            days,
        )

    first = await run_pass(janitor_pool, PERIODS, 1000, asyncio.Event(), share=FLAT_OUT)

    left = await owner_pool.fetch(
        "SELECT record_id FROM record_sends WHERE tenant_id = $1", arranged.tenant_id
    )
    # An ISSUED record's stamp is what keeps a redelivered job from sending again: kept.
    assert {r["record_id"] for r in left} == {issued, recent}
    assert first.pruned["send_stamps"] >= 1
    again = await run_pass(janitor_pool, PERIODS, 1000, asyncio.Event(), share=FLAT_OUT)
    assert again.pruned["send_stamps"] == 0
