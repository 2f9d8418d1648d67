"""The outbox functions belong to the relay's role alone.

They claim, lock and move records of every tenant outside RLS, so an application-role
session (any request handler of any service) must not reach them; and the relay itself may
mark QUEUED only the records its own transaction claimed.
"""

from __future__ import annotations

import base64
import uuid

import asyncpg
import pytest

from credbatch.config import APP_ROLE, MONITOR_ROLE, RELAY_ROLE, WEBHOOKS_ROLE, load_settings
from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.batches import insert_batch

CLAIM_ALL = "SELECT * FROM outbox_claim(100000)"
CLAIM_FAIR = "SELECT * FROM outbox_claim(100000, NULL, NULL, NULL, NULL, NULL, 50)"
MARK = "SELECT outbox_mark_queued($1::uuid[], $2::uuid[])"
BACKLOG = "SELECT dispatchable_backlog(NULL, NULL)"
DEV_KEK = base64.b64encode(bytes(32)).decode()  # development mode checks only its length


async def pending(app_pool: asyncpg.Pool, records: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A fresh tenant's QUEUED batch with ``records`` PENDING records."""
    scope = service_scope(uuid.uuid4())
    async with tenant_transaction(app_pool, scope) as conn:
        batch = await insert_batch(
            conn, scope.tenant_id, creator=scope.user_id, states=["PENDING"] * records
        )
    return scope.tenant_id, batch.record_ids


async def states(owner_pool: asyncpg.Pool, ids: list[uuid.UUID]) -> set[str]:
    rows = await owner_pool.fetch("SELECT state FROM records WHERE id = ANY($1::uuid[])", ids)
    return {r["state"] for r in rows}


async def test_relay_role_is_a_plain_login_role_that_owns_nothing(
    owner_pool: asyncpg.Pool,
) -> None:
    role = await owner_pool.fetchrow("SELECT * FROM pg_roles WHERE rolname = $1", RELAY_ROLE)
    assert role is not None
    assert role["rolcanlogin"]
    for attribute in ("rolsuper", "rolbypassrls", "rolcreatedb", "rolcreaterole"):
        assert not role[attribute], attribute
    owned = await owner_pool.fetchval(
        "SELECT (SELECT count(*) FROM pg_class WHERE relowner = $1::regrole)"
        " + (SELECT count(*) FROM pg_proc WHERE proowner = $1::regrole)"
        " + (SELECT count(*) FROM pg_namespace WHERE nspowner = $1::regrole)",
        RELAY_ROLE,
    )
    assert owned == 0
    for a, b in ((APP_ROLE, RELAY_ROLE), (RELAY_ROLE, APP_ROLE)):
        assert not await owner_pool.fetchval("SELECT pg_has_role($1, $2, 'MEMBER')", a, b)


@pytest.mark.parametrize("statement", [CLAIM_ALL, CLAIM_FAIR, BACKLOG])
async def test_the_application_role_cannot_claim_or_read_the_backlog(
    app_pool: asyncpg.Pool, statement: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        async with app_pool.acquire() as conn, conn.transaction():
            await conn.fetch(statement)


async def test_the_application_role_cannot_mark_queued(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant, ids = await pending(app_pool, 2)
    # Not even inside its own tenant's scope, on its own records.
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
            await conn.fetchval(MARK, [tenant] * len(ids), ids)
    assert await states(owner_pool, ids) == {"PENDING"}


async def test_every_outbox_function_is_the_relays_alone(owner_pool: asyncpg.Pool) -> None:
    functions = [
        r["fn"]
        for r in await owner_pool.fetch(
            "SELECT oid::regprocedure::text AS fn FROM pg_proc"
            " WHERE pronamespace = 'public'::regnamespace"
            " AND (proname LIKE 'outbox\\_%' OR proname = 'dispatchable_backlog')"
        )
    ]
    assert any(f.startswith("outbox_claim(") for f in functions)
    assert "outbox_mark_queued(uuid[],uuid[])" in functions
    for fn in functions:
        for role, allowed in ((RELAY_ROLE, True), (APP_ROLE, False), ("public", False)):
            granted = await owner_pool.fetchval(
                "SELECT has_function_privilege($1, $2, 'EXECUTE')", role, fn
            )
            assert granted is allowed, (role, fn)


async def test_the_relay_claims_and_marks_what_it_claimed(
    app_pool: asyncpg.Pool, relay_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant, ids = await pending(app_pool, 3)
    async with relay_pool.acquire() as conn, conn.transaction():
        assert await conn.fetchval("SELECT current_user") == RELAY_ROLE
        assert await conn.fetchval(BACKLOG) >= 3
        claimed = [r for r in await conn.fetch(CLAIM_FAIR) if r["tenant_id"] == tenant]
        assert sorted(r["record_id"] for r in claimed) == sorted(ids)
        assert await conn.fetchval(MARK, [tenant] * len(ids), ids) == 3
    assert await states(owner_pool, ids) == {"QUEUED"}


async def test_the_relay_sees_no_table(relay_pool: asyncpg.Pool) -> None:
    for table in ("records", "batches", "dispatch_batches", "tenant_limits"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await relay_pool.fetch(f"SELECT 1 FROM {table} LIMIT 1")


async def test_mark_queued_without_a_claim_changes_nothing(
    app_pool: asyncpg.Pool, relay_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant, ids = await pending(app_pool, 3)
    async with relay_pool.acquire() as conn, conn.transaction():
        assert await conn.fetchval(MARK, [tenant] * len(ids), ids) == 0
    # Nor with a transaction id assigned by something other than a claim.
    async with relay_pool.acquire() as conn, conn.transaction():
        await conn.fetchval("SELECT pg_current_xact_id()")
        assert await conn.fetchval(MARK, [tenant] * len(ids), ids) == 0
    assert await states(owner_pool, ids) == {"PENDING"}


async def test_mark_queued_ignores_records_another_transaction_claimed(
    app_pool: asyncpg.Pool, relay_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant, ids = await pending(app_pool, 4)
    async with (
        relay_pool.acquire() as claimer,
        relay_pool.acquire() as other,
        claimer.transaction(),
    ):
        claimed = [r for r in await claimer.fetch(CLAIM_ALL) if r["tenant_id"] == tenant]
        assert len(claimed) == 4
        # Another relay transaction (its own claim finds these locked and skips them).
        async with other.transaction():
            assert not [r for r in await other.fetch(CLAIM_ALL) if r["tenant_id"] == tenant]
            assert await other.fetchval(MARK, [tenant] * len(ids), ids) == 0
        # The claimer marks only the half it names; its other claimed rows stay PENDING.
        assert await claimer.fetchval(MARK, [tenant] * 2, ids[:2]) == 2
    assert await states(owner_pool, ids[:2]) == {"QUEUED"}
    assert await states(owner_pool, ids[2:]) == {"PENDING"}
    # A claim committed earlier gives a later transaction nothing to mark.
    async with relay_pool.acquire() as conn:
        async with conn.transaction():
            assert len([r for r in await conn.fetch(CLAIM_ALL) if r["tenant_id"] == tenant]) == 2
        async with conn.transaction():
            assert await conn.fetchval(MARK, [tenant] * 2, ids[2:]) == 0
    assert await states(owner_pool, ids[2:]) == {"PENDING"}


async def test_mark_queued_ignores_records_claimed_in_a_savepoint_rolled_back(
    app_pool: asyncpg.Pool, relay_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant, ids = await pending(app_pool, 2)
    async with relay_pool.acquire() as conn, conn.transaction():
        savepoint = conn.transaction()
        await savepoint.start()
        assert len([r for r in await conn.fetch(CLAIM_ALL) if r["tenant_id"] == tenant]) == 2
        await savepoint.rollback()
        assert await conn.fetchval(MARK, [tenant] * len(ids), ids) == 0
    assert await states(owner_pool, ids) == {"PENDING"}


def test_the_relay_url_defaults_to_the_relay_role_on_the_owners_database() -> None:
    owner = "postgresql://owner:secret@db.internal:6543/credbatch_x"
    settings = load_settings({"CREDBATCH_DATABASE_URL": owner, "CREDBATCH_KEK": DEV_KEK})
    assert settings.relay_database_url == f"postgresql://{RELAY_ROLE}@db.internal:6543/credbatch_x"
    given = f"postgresql://{RELAY_ROLE}:pw@elsewhere/credbatch_x"
    settings = load_settings(
        {
            "CREDBATCH_DATABASE_URL": owner,
            "CREDBATCH_RELAY_DATABASE_URL": given,
            "CREDBATCH_KEK": DEV_KEK,
        }
    )
    assert settings.relay_database_url == given


CLAIM_STEPS = ("dispatch_choose_", "dispatch_take_", "dispatch_advance_")


async def test_the_claims_steps_run_only_inside_the_claim(owner_pool: asyncpg.Pool) -> None:
    # outbox_claim runs as the owner, under its own search_path, and composes its steps; the
    # steps lock and change the scheduler's keys of every tenant, so no role may run one on
    # its own, and none runs with more rights or other settings than its caller.
    rows = await owner_pool.fetch(
        "SELECT oid::regprocedure::text AS fn, prosecdef, proconfig FROM pg_proc"
        " WHERE pronamespace = 'public'::regnamespace"
        " AND (proname LIKE ANY ($1::text[]) OR proname = 'outbox_claim')",
        [prefix.replace("_", "\\_") + "%" for prefix in CLAIM_STEPS],
    )
    steps = {r["fn"]: r for r in rows if not r["fn"].startswith("outbox_claim(")}
    assert {fn.split("(")[0] for fn in steps} == {
        "dispatch_choose_tenant",
        "dispatch_choose_batch",
        "dispatch_take_records",
        "dispatch_advance_tenant",
        "dispatch_advance_clock",
    }
    for row in rows:
        claim = row["fn"].startswith("outbox_claim(")
        assert row["prosecdef"] is claim, row["fn"]
        if claim:
            assert "search_path=pg_catalog, public, pg_temp" in row["proconfig"], row["fn"]
        else:
            assert row["proconfig"] is None, row["fn"]
    for fn in steps:
        for role in (RELAY_ROLE, APP_ROLE, WEBHOOKS_ROLE, MONITOR_ROLE, "public"):
            granted = await owner_pool.fetchval(
                "SELECT has_function_privilege($1, $2, 'EXECUTE')", role, fn
            )
            assert not granted, (role, fn)
