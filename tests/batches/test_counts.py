"""Incremental record counts (migration 0600): always equal to counting the records.

Every transition runs as the role that runs it in production, through the same kind of
statement: uploads insert as the creating issuer, the relay claims through its SECURITY
DEFINER functions with no tenant set, the worker updates groups under its service scope,
cancel and retry are the repository's own functions, a claim and a deletion run as the owner.
The reader is the real repository (application role, RLS); the live count reads as the owner.
"""

from __future__ import annotations

import random
import uuid

import asyncpg
import pytest

from credbatch.batches import repository
from credbatch.batches.counts import fold_counts
from credbatch.batches.model import RecordCounts, RecordState
from credbatch.tenancy import TenantScope, service_scope, tenant_transaction
from tests.batches.arrange import arrange_batch, ensure_tenant

# The upload's record insert (services/uploads/repository.py), rows numbered from $3.
INSERT_RECORDS = """
INSERT INTO records (tenant_id, id, batch_id, row_number, email, phone, attributes)
SELECT app_tenant(), gen_random_uuid(), $1, $3 + g, 'h' || g || '@example.org', NULL, '{}'
FROM generate_series(1, $2) AS g
"""
# The worker's group updates (workers/issuance/repository.py), in the worker's lock order.
LOCK_GROUP = "SELECT 1 FROM records WHERE tenant_id = $1 AND id = ANY($2) ORDER BY id FOR UPDATE"
MARK_ISSUED = """
UPDATE records SET state = 'ISSUED', updated_at = now()
WHERE tenant_id = $1 AND id = ANY($2) AND state IN ('PENDING', 'QUEUED')
"""
WRITE_OUTCOMES = """
UPDATE records SET state = CASE WHEN state = 'ISSUED' THEN $3 ELSE state END,
                   email_sent_at = now(), updated_at = now()
WHERE tenant_id = $1 AND id = ANY($2)
"""
MARK_FAILED_UNISSUED = """
UPDATE records SET state = 'FAILED', updated_at = now()
WHERE tenant_id = $1 AND id = ANY($2) AND state IN ('PENDING', 'QUEUED')
"""


def issuer(tenant: uuid.UUID) -> TenantScope:
    return TenantScope(tenant, "ana", frozenset({"issuer"}), ("default",))


async def live(owner: asyncpg.Pool, batch_id: uuid.UUID) -> RecordCounts:
    rows = await owner.fetch(
        "SELECT state, count(*) AS n FROM records WHERE batch_id = $1 GROUP BY state", batch_id
    )
    return RecordCounts.from_mapping({r["state"]: r["n"] for r in rows})


async def incremental(app: asyncpg.Pool, tenant: uuid.UUID, batch_id: uuid.UUID) -> RecordCounts:
    async with tenant_transaction(app, service_scope(tenant), readonly=True) as conn:
        view = await repository.get_batch(conn, batch_id)
    assert view is not None
    return view.counts


async def some_records(
    owner: asyncpg.Pool, rng: random.Random, batch_id: uuid.UUID, states: tuple[str, ...]
) -> list[uuid.UUID]:
    ids = await owner.fetch(
        "SELECT id FROM records WHERE batch_id = $1 AND state = ANY($2)", batch_id, list(states)
    )
    return rng.sample([r["id"] for r in ids], k=min(len(ids), rng.randint(1, 8)))


async def worker_update(
    app: asyncpg.Pool, tenant: uuid.UUID, ids: list[uuid.UUID], sql: str, *args: object
) -> None:
    async with tenant_transaction(app, service_scope(tenant)) as conn:
        await conn.execute(LOCK_GROUP, tenant, ids)
        await conn.execute(sql, tenant, ids, *args)


@pytest.mark.timeout(120)
async def test_random_transitions_keep_counts_exact(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    rng = random.Random(20240600)
    tenant = uuid.uuid4()
    schema = await ensure_tenant(owner_pool, tenant)
    batches = [
        (await arrange_batch(owner_pool, tenant, schema, creator="ana", states=())).batch_id
        for _ in range(3)
    ]
    rows = dict.fromkeys(batches, 0)
    ops = ["upload", "claim", "issue", "invite", "fail", "fail_issued", "cancel", "retry"]
    ops += ["claimed", "delete", "fold"]
    done: list[str] = []
    for step in range(150):
        batch_id = rng.choice(batches)
        op = rng.choice(ops) if step > 2 else "upload"
        if op == "upload":
            n = rng.randint(1, 30)
            async with tenant_transaction(app_pool, issuer(tenant)) as conn:
                await conn.execute(INSERT_RECORDS, batch_id, n, rows[batch_id])
            rows[batch_id] += n
        elif op == "claim":
            async with app_pool.acquire() as conn, conn.transaction():
                claimed = await conn.fetch("SELECT * FROM outbox_claim($1)", rng.randint(1, 40))
                # Other tests' records of this database stay PENDING.
                claimed = [c for c in claimed if c["tenant_id"] == tenant]
                await conn.fetchval(
                    "SELECT outbox_mark_queued($1, $2)",
                    [c["tenant_id"] for c in claimed],
                    [c["record_id"] for c in claimed],
                )
        elif op in ("issue", "fail"):
            ids = await some_records(owner_pool, rng, batch_id, ("PENDING", "QUEUED"))
            sql = MARK_ISSUED if op == "issue" else MARK_FAILED_UNISSUED
            if ids:
                await worker_update(app_pool, tenant, ids, sql)
        elif op in ("invite", "fail_issued"):
            ids = await some_records(owner_pool, rng, batch_id, ("ISSUED", "INVITED"))
            outcome = "INVITED" if op == "invite" else "FAILED"
            if ids:
                await worker_update(app_pool, tenant, ids, WRITE_OUTCOMES, outcome)
        elif op in ("cancel", "retry"):
            async with tenant_transaction(app_pool, issuer(tenant)) as conn:
                if op == "cancel":
                    await repository.cancel_batch(conn, batch_id)
                else:
                    await repository.retry_failed(conn, batch_id)
        elif op == "claimed":
            await owner_pool.execute(
                "UPDATE records SET state = 'CLAIMED' WHERE id = ANY($1)",
                await some_records(owner_pool, rng, batch_id, ("INVITED",)),
            )
        elif op == "delete":
            await owner_pool.execute(
                "DELETE FROM records WHERE id = ANY($1)",
                await some_records(owner_pool, rng, batch_id, tuple(RecordState)),
            )
        else:
            await fold_counts(app_pool)
        done.append(op)
        for b in batches:
            assert await incremental(app_pool, tenant, b) == await live(owner_pool, b), done
    assert set(done) == set(ops)  # every kind of transition ran
