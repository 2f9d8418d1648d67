"""Batch and record visibility by role, enforced by RLS for the application role."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
import pytest
import pytest_asyncio

from credbatch.tenancy import TenantScope, service_scope, tenant_transaction
from tests.fixtures.batches import insert_batch, insert_schema


def scope(
    tenant: uuid.UUID, user: str, roles: Iterable[str], departments: Iterable[str] = ()
) -> TenantScope:
    return TenantScope(tenant, user, frozenset(roles), tuple(departments))


@dataclass(frozen=True)
class World:
    tenant: uuid.UUID
    other_tenant: uuid.UUID
    schema_id: uuid.UUID
    sales: uuid.UUID  # by issuer alice, department sales
    hr: uuid.UUID  # by issuer bob, department hr
    ops: uuid.UUID  # by org admin carol, department ops
    foreign: uuid.UUID  # another tenant's batch, same creator and department as sales
    records: dict[uuid.UUID, list[uuid.UUID]]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(app_pool: asyncpg.Pool) -> World:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    records: dict[uuid.UUID, list[uuid.UUID]] = {}
    async with tenant_transaction(app_pool, scope(tenant, "carol", ["org_admin"])) as conn:
        schema_id = await insert_schema(conn, tenant)
    batches = []
    for user, roles, department in (
        ("alice", ["issuer"], "sales"),
        ("bob", ["issuer"], "hr"),
        ("carol", ["org_admin"], "ops"),
    ):
        async with tenant_transaction(app_pool, scope(tenant, user, roles, [department])) as conn:
            made = await insert_batch(
                conn, tenant, schema_id, creator=user, department=department, states=["ISSUED"] * 2
            )
        batches.append(made.batch_id)
        records[made.batch_id] = made.record_ids
    async with tenant_transaction(app_pool, scope(other, "alice", ["issuer"], ["sales"])) as conn:
        foreign = await insert_batch(
            conn, other, creator="alice", department="sales", states=["ISSUED"] * 2
        )
        records[foreign.batch_id] = foreign.record_ids
    sales, hr, ops = batches
    return World(tenant, other, schema_id, sales, hr, ops, foreign.batch_id, records)


VISIBILITY = [
    ("alice", ["issuer"], ["sales"], {"sales"}),
    ("alice", ["issuer"], ["hr"], {"sales"}),  # an issuer sees what it created, wherever
    ("bob", ["issuer"], ["sales"], {"hr"}),
    ("dave", ["issuer"], ["sales"], set()),
    ("olga", ["observer"], ["sales"], {"sales"}),
    ("olga", ["observer"], ["sales", "hr"], {"sales", "hr"}),
    ("olga", ["observer"], [], set()),
    ("alice", ["issuer", "observer"], ["hr"], {"sales", "hr"}),  # union of roles
    ("carol", ["org_admin"], [], {"sales", "hr", "ops"}),
    ("system:worker", ["service"], [], {"sales", "hr", "ops"}),
    ("nobody", [], ["sales"], set()),
]


@pytest.mark.parametrize(("user", "roles", "departments", "expected"), VISIBILITY)
async def test_batches_and_records_visible_by_role(
    app_pool: asyncpg.Pool,
    world: World,
    user: str,
    roles: list[str],
    departments: list[str],
    expected: set[str],
) -> None:
    names = {world.sales: "sales", world.hr: "hr", world.ops: "ops"}
    who = scope(world.tenant, user, roles, departments)
    async with tenant_transaction(app_pool, who, readonly=True) as conn:
        seen = {r["id"] for r in await conn.fetch("SELECT id FROM batches")}
        assert {names[b] for b in seen} == expected
        for batch_id, name in names.items():
            got = await conn.fetchval("SELECT id FROM batches WHERE id = $1", batch_id)
            assert (got is not None) == (name in expected)
            ids = {
                r["id"]
                for r in await conn.fetch("SELECT id FROM records WHERE batch_id = $1", batch_id)
            }
            assert ids == (set(world.records[batch_id]) if name in expected else set())
        # The other tenant's batch is never visible, even with the same creator/department.
        assert await conn.fetchval("SELECT count(*) FROM batches WHERE id = $1", world.foreign) == 0
        assert (
            await conn.fetchval("SELECT count(*) FROM records WHERE batch_id = $1", world.foreign)
            == 0
        )


async def try_update(
    app_pool: asyncpg.Pool, who: TenantScope, batch_id: uuid.UUID
) -> tuple[str, str]:
    async with tenant_transaction(app_pool, who) as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            batch = await conn.execute(
                "UPDATE batches SET updated_at = now() WHERE id = $1", batch_id
            )
            records = await conn.execute(
                "UPDATE records SET updated_at = now() WHERE batch_id = $1", batch_id
            )
        finally:
            await tx.rollback()
    return batch, records


@pytest.mark.parametrize(
    ("user", "roles", "departments", "batch", "allowed"),
    [
        ("alice", ["issuer"], ["sales"], "sales", True),
        ("alice", ["issuer"], ["sales"], "hr", False),
        ("olga", ["observer"], ["sales"], "sales", False),  # observers are read-only
        ("alice", ["issuer", "observer"], ["hr"], "hr", False),
        ("carol", ["org_admin"], [], "hr", True),
        ("system:worker", ["service"], [], "sales", True),
    ],
)
async def test_updates_by_role(
    app_pool: asyncpg.Pool,
    world: World,
    user: str,
    roles: list[str],
    departments: list[str],
    batch: str,
    allowed: bool,
) -> None:
    batch_id = {"sales": world.sales, "hr": world.hr}[batch]
    got = await try_update(app_pool, scope(world.tenant, user, roles, departments), batch_id)
    assert got == (("UPDATE 1", "UPDATE 2") if allowed else ("UPDATE 0", "UPDATE 0"))


@pytest.mark.parametrize(
    ("user", "roles", "departments", "creator", "department"),
    [
        ("alice", ["issuer"], ["sales"], "bob", "sales"),  # creator must be the caller
        ("alice", ["issuer"], ["sales"], "alice", "hr"),  # not one of the caller's departments
        ("olga", ["observer"], ["sales"], "olga", "sales"),  # observers cannot upload
        ("nobody", [], ["sales"], "nobody", "sales"),
    ],
)
async def test_batch_insert_refused(
    app_pool: asyncpg.Pool,
    world: World,
    user: str,
    roles: list[str],
    departments: list[str],
    creator: str,
    department: str,
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tenant_transaction(
            app_pool, scope(world.tenant, user, roles, departments)
        ) as conn:
            await insert_batch(
                conn,
                world.tenant,
                world.schema_id,
                creator=creator,
                department=department,
                states=(),
            )


async def test_records_cannot_be_added_to_someone_elses_batch(
    app_pool: asyncpg.Pool, world: World
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tenant_transaction(
            app_pool, scope(world.tenant, "alice", ["issuer"], ["hr"])
        ) as conn:
            await conn.execute(
                "INSERT INTO records (tenant_id, id, batch_id, row_number) VALUES ($1, $2, $3, 99)",
                world.tenant,
                uuid.uuid4(),
                world.hr,
            )


async def test_per_batch_record_query_is_an_index_lookup(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    """The records policy's EXISTS on batches keeps a per-batch query on two index lookups.

    A tenant with 2,000 batches of 10 records, analysed, so the planner sees real sizes.
    """
    tenant = uuid.uuid4()
    issuer = scope(tenant, "alice", ["issuer"], ["sales"])
    async with tenant_transaction(app_pool, issuer) as conn:
        schema_id = await insert_schema(conn, tenant)
        await conn.execute(
            """
            INSERT INTO batches (tenant_id, id, schema_id, schema_version, mediums, creator,
                                 department, total_records, state)
            SELECT $1, gen_random_uuid(), $2, 1, '{SMS}', app_user(), 'sales', 10, 'COMPLETED'
            FROM generate_series(1, 2000)
            """,
            tenant,
            schema_id,
        )
        await conn.execute(
            """
            INSERT INTO records (tenant_id, id, batch_id, row_number, state)
            SELECT b.tenant_id, gen_random_uuid(), b.id, n, 'INVITED'
            FROM batches b, generate_series(1, 10) AS n
            """
        )
        batch_id = await conn.fetchval("SELECT id FROM batches LIMIT 1")
    await owner_pool.execute("ANALYZE batches, records")
    for who in (
        issuer,
        scope(tenant, "olga", ["observer"], ["sales"]),
        service_scope(tenant),
    ):
        async with tenant_transaction(app_pool, who, readonly=True) as conn:
            for query in (
                f"SELECT * FROM records WHERE batch_id = '{batch_id}'",
                f"SELECT state, count(*) FROM records WHERE batch_id = '{batch_id}' GROUP BY state",
                f"SELECT * FROM records WHERE batch_id = '{batch_id}' AND row_number = 1",
            ):
                plan = "\n".join(r[0] for r in await conn.fetch("EXPLAIN " + query))
                assert "Seq Scan" not in plan, plan
                assert re.search(r"Index (Only )?Scan using \w+ on records", plan), plan
                assert re.search(r"Index Cond: .*tenant_id = .*batch_id = ", plan), plan
                # The batch is found by its primary key, per record (not a hashed scan of
                # all the tenant's batches).
                assert "Index Scan using batches_pkey on batches b" in plan, plan
                assert "id = records.batch_id" in plan, plan
