"""Incremental record counts (records_count_changes): always equal to counting the records.

Every transition runs as the role that runs it in production, through the same kind of
statement: uploads insert as the creating issuer, the relay claims through its SECURITY
DEFINER functions with no tenant set, the worker updates groups under its service scope,
cancel and retry are the repository's own functions, a claim and a deletion run as the owner,
and the fold runs as the relay's role, as the relay process does. The reader is the real
repository (application role, RLS); the live count reads as the owner.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import replace

import asyncpg
import pytest

from credbatch.batches import commands, lifecycle, repository
from credbatch.batches.counts import fold_counts
from credbatch.batches.model import RecordCounts, RecordState
from credbatch.tenancy import TenantScope, service_scope, tenant_transaction
from tests.fixtures.batches import insert_batch, insert_schema

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
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool, relay_pool: asyncpg.Pool
) -> None:
    rng = random.Random(20240600)
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    batches = [
        (await insert_batch(owner_pool, tenant, schema, creator="ana", states=())).batch_id
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
            async with relay_pool.acquire() as conn, conn.transaction():
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
                    await commands.mark_cancelled(conn, batch_id)
                    await commands.cancel_open_records(conn, batch_id)
                else:
                    await commands.retry_failed(conn, batch_id)
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
            await fold_counts(relay_pool)
        done.append(op)
        for b in batches:
            assert await incremental(app_pool, tenant, b) == await live(owner_pool, b), done
    assert set(done) == set(ops)  # every kind of transition ran


@pytest.mark.timeout(120)
async def test_concurrent_workers_on_one_batch_neither_deadlock_nor_miscount(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool, relay_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(
        owner_pool, tenant, schema, creator="ana", states=["QUEUED"] * 600
    )

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(25):
            # Overlapping groups, locked in id order as the worker does.
            ids = rng.sample(arranged.record_ids, 20)
            target = rng.choice(list(RecordState))
            # Only the records that may change to it do (the lifecycle refuses the others).
            sources = [s.value for s in RecordState if lifecycle.allowed(s, target)]
            async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
                await conn.execute(LOCK_GROUP, tenant, ids)
                await conn.execute(
                    "UPDATE records SET state = $3, updated_at = now()"
                    " WHERE tenant_id = $1 AND id = ANY($2) AND state = ANY($4)",
                    tenant,
                    ids,
                    target.value,
                    sources,
                )

    async def folder(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await fold_counts(relay_pool)
            await asyncio.sleep(0.01)

    stop = asyncio.Event()
    folding = asyncio.create_task(folder(stop))
    await asyncio.gather(*(worker(seed) for seed in range(6)))
    stop.set()
    await folding
    counts = await incremental(app_pool, tenant, arranged.batch_id)
    assert counts == await live(owner_pool, arranged.batch_id)
    assert sum(counts.of(s) for s in RecordState) == 600


async def test_a_worker_transaction_blocks_no_other_writer_of_its_batch(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool, relay_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(owner_pool, tenant, schema, creator="ana", states=["QUEUED"] * 4)
    first, second = arranged.record_ids[:2], arranged.record_ids[2:]
    async with tenant_transaction(app_pool, service_scope(tenant)) as held:
        await held.execute(MARK_ISSUED, tenant, first)  # its count row stays uncommitted
        async with tenant_transaction(app_pool, service_scope(tenant)) as other:
            await other.execute("SET LOCAL lock_timeout = '2s'")
            await other.execute(MARK_ISSUED, tenant, second)
        async with relay_pool.acquire() as conn:
            await conn.execute("SET lock_timeout = '2s'")
            await conn.fetchval("SELECT batch_counts_fold(NULL, NULL)")
            await conn.execute("RESET lock_timeout")
        # Readers see the committed change only.
        assert (await incremental(app_pool, tenant, arranged.batch_id)).issued == 2
    assert (await incremental(app_pool, tenant, arranged.batch_id)).issued == 4


async def test_counts_of_a_finished_batch_follow_later_claims(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool, relay_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(
        owner_pool, tenant, schema, creator="ana", states=["INVITED", "INVITED", "FAILED"]
    )
    await owner_pool.execute(
        "UPDATE batches SET state = 'COMPLETED_WITH_ERRORS', completed_at = now() WHERE id = $1",
        arranged.batch_id,
    )
    await fold_counts(relay_pool)
    await owner_pool.execute(
        "UPDATE records SET state = 'CLAIMED', updated_at = now() + interval '1 minute'"
        " WHERE id = $1",
        arranged.record_ids[0],
    )
    async with tenant_transaction(app_pool, service_scope(tenant), readonly=True) as conn:
        view = await repository.get_batch(conn, arranged.batch_id)
    assert view is not None
    assert (view.counts.invited, view.counts.claimed, view.counts.failed) == (1, 1, 1)
    # The last record change is the batch's update time.
    claimed_at = await owner_pool.fetchval(
        "SELECT updated_at FROM records WHERE id = $1", arranged.record_ids[0]
    )
    assert view.update_time == claimed_at


async def test_count_rows_stay_in_their_tenant_and_only_triggers_write_them(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool, relay_pool: asyncpg.Pool
) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    for tenant in (a, b):
        schema = await insert_schema(owner_pool, tenant)
        await insert_batch(owner_pool, tenant, schema, creator="ana", states=["PENDING"])
    await fold_counts(relay_pool)
    schema = await insert_schema(owner_pool, b)
    await insert_batch(owner_pool, b, schema, creator="ana", states=["PENDING"])  # a delta
    for table in ("batch_counts", "batch_count_deltas"):
        async with tenant_transaction(app_pool, service_scope(a), readonly=True) as conn:
            tenants = {r["tenant_id"] for r in await conn.fetch(f"SELECT tenant_id FROM {table}")}
            assert tenants <= {a}
        assert (b,) in {
            (r["tenant_id"],) for r in await owner_pool.fetch(f"SELECT tenant_id FROM {table}")
        }
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with tenant_transaction(app_pool, service_scope(a)) as conn:
                await conn.execute(
                    f"INSERT INTO {table} (tenant_id, batch_id, state, n)"
                    " VALUES ($1, $2, 'INVITED', 1000)",
                    a,
                    uuid.uuid4(),
                )


async def test_the_application_role_cannot_fold_any_tenant_s_counts(
    app_pool: asyncpg.Pool,
) -> None:
    # The fold moves every tenant's rows: not even inside a tenant's own scope.
    tenant = uuid.uuid4()
    for args in ("NULL, NULL", f"'{tenant}', NULL"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
                await conn.fetchval(f"SELECT batch_counts_fold({args})")


async def live_deliveries(owner: asyncpg.Pool, batch_id: uuid.UUID) -> tuple[int, int]:
    row = await owner.fetchrow(
        "SELECT count(*) FILTER (WHERE email_delivery = 'DELIVERED' OR sms_delivery = 'DELIVERED')"
        " AS delivered, count(*) FILTER (WHERE email_delivery IN ('BOUNCED', 'FAILED')"
        " OR sms_delivery IN ('BOUNCED', 'FAILED')) AS bounced FROM records WHERE batch_id = $1",
        batch_id,
    )
    assert row is not None
    return row["delivered"], row["bounced"]


@pytest.mark.timeout(120)
async def test_delivered_and_bounced_counts_follow_every_delivery_change(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool, relay_pool: asyncpg.Pool
) -> None:
    rng = random.Random(20261206)
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(
        owner_pool, tenant, schema, creator="ana", states=["INVITED"] * 40
    )
    channels = ("email_delivery", "sms_delivery")
    outcomes = (None, "ACCEPTED", "DELIVERED", "DEFERRED", "BOUNCED", "FAILED")
    done: list[str] = []
    for _ in range(80):
        op = rng.choice(["set", "set", "set", "fold", "delete", "insert"])
        if op == "set":
            # Several records at once, as the bounce receiver writes a group of reports.
            ids = rng.sample(arranged.record_ids, k=rng.randint(1, 6))
            await owner_pool.execute(
                f"UPDATE records SET {rng.choice(channels)} = $2 WHERE id = ANY($1)",
                ids,
                rng.choice(outcomes),
            )
        elif op == "fold":
            await fold_counts(relay_pool)
        elif op == "delete":
            gone = rng.choice(arranged.record_ids)
            arranged.record_ids.remove(gone)
            await owner_pool.execute("DELETE FROM records WHERE id = $1", gone)
        else:
            # A record stored with its delivery already known (a copy, a restore).
            row = await owner_pool.fetchval(
                "SELECT max(row_number) + 1 FROM records WHERE batch_id = $1", arranged.batch_id
            )
            new = uuid.uuid4()
            await owner_pool.execute(
                "INSERT INTO records (tenant_id, id, batch_id, row_number, state, email,"
                " email_delivery, sms_delivery) VALUES ($1, $2, $3, $4, 'INVITED',"
                " 'x@example.org', $5, $6)",
                tenant,
                new,
                arranged.batch_id,
                row or 1,
                rng.choice(outcomes),
                rng.choice(outcomes),
            )
            arranged.record_ids.append(new)
        done.append(op)
        counts = await incremental(app_pool, tenant, arranged.batch_id)
        assert (counts.delivered, counts.bounced) == await live_deliveries(
            owner_pool, arranged.batch_id
        ), done
        # The delivery keys are no record state: the states still add up to the records.
        assert counts == replace(
            await live(owner_pool, arranged.batch_id),
            delivered=counts.delivered,
            bounced=counts.bounced,
        )
    assert set(done) == {"set", "fold", "delete", "insert"}
    delivered, bounced = await live_deliveries(owner_pool, arranged.batch_id)
    assert delivered > 0 and bounced > 0  # both figures were exercised, not only zeros
