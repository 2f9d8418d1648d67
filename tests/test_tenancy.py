"""credbatch.tenancy: the tenant transaction, on the real server as the application role."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from credbatch.config import Settings
from credbatch.db.pool import create_pool, register_codecs
from credbatch.tenancy import TenantScope, service_scope, tenant_transaction, user_scope

ROOT = Path(__file__).resolve().parent.parent

SETTINGS = """
SELECT app_tenant() AS tenant, app_user() AS "user", app_roles() AS roles,
       app_departments() AS departments
"""


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Keep session state across releases, so only transaction scoping can clear it."""


@pytest_asyncio.fixture(loop_scope="session")
async def single_pool(db_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """One connection only, so consecutive transactions share it; no reset on release."""
    pool = await asyncpg.create_pool(
        db_settings.app_database_url,
        min_size=1,
        max_size=1,
        init=register_codecs,
        reset=_no_reset,
    )
    try:
        yield pool
    finally:
        await pool.close()


def alice(tenant: uuid.UUID) -> TenantScope:
    return TenantScope(tenant, "alice", frozenset({"issuer", "observer"}), ("sales", "hr"))


async def test_settings_are_set_for_the_transaction(single_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    async with tenant_transaction(single_pool, alice(tenant)) as conn:
        row = await conn.fetchrow(SETTINGS)
        assert row["tenant"] == tenant
        assert row["user"] == "alice"
        assert sorted(row["roles"]) == ["issuer", "observer"]
        assert row["departments"] == ["sales", "hr"]
        assert conn.is_in_transaction()


async def test_settings_do_not_leak_into_the_next_transaction(single_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    async with tenant_transaction(single_pool, service_scope(tenant)) as conn:
        pid = await conn.fetchval("SELECT pg_backend_pid()")
        assert await conn.fetchval("SELECT count(*) FROM tenants") == 1
    async with single_pool.acquire() as conn:
        assert await conn.fetchval("SELECT pg_backend_pid()") == pid  # the same connection
        row = await conn.fetchrow(SETTINGS)  # outside any transaction
        assert row["tenant"] is None
        assert row["user"] is None
        assert row["roles"] == []
        assert row["departments"] == []
        async with conn.transaction():
            assert (await conn.fetchrow(SETTINGS))["tenant"] is None
            assert await conn.fetchval("SELECT count(*) FROM tenants") == 0


async def test_settings_do_not_survive_a_rollback(single_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with tenant_transaction(single_pool, service_scope(tenant)):
            raise RuntimeError("boom")
    async with single_pool.acquire() as conn:
        assert (await conn.fetchrow(SETTINGS))["tenant"] is None


async def test_a_transaction_not_durable_commits_without_waiting_for_the_disk(
    single_pool: asyncpg.Pool,
) -> None:
    tenant = uuid.uuid4()
    async with tenant_transaction(single_pool, service_scope(tenant), durable=False) as conn:
        assert await conn.fetchval("SHOW synchronous_commit") == "off"
        assert (await conn.fetchrow(SETTINGS))["tenant"] == tenant
        await conn.execute("CREATE TEMPORARY TABLE lazy_commit (n int)")
        await conn.execute("INSERT INTO lazy_commit VALUES (1)")
    async with single_pool.acquire() as conn:
        # Committed all the same; the setting was the transaction's alone.
        assert await conn.fetchval("SELECT n FROM lazy_commit") == 1
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
        await conn.execute("DROP TABLE lazy_commit")
    async with tenant_transaction(single_pool, service_scope(tenant)) as conn:
        assert await conn.fetchval("SHOW synchronous_commit") == "on"


async def test_awkward_departments_round_trip(single_pool: asyncpg.Pool) -> None:
    departments = ("a,b", 'quote"d', "back\\slash", "{braces}", "with space", "NULL", "")
    scope = TenantScope(uuid.uuid4(), "u", frozenset({"observer"}), departments)
    async with tenant_transaction(single_pool, scope, readonly=True) as conn:
        assert tuple(await conn.fetchval("SELECT app_departments()")) == departments


async def test_awkward_user_ids_and_departments_are_values_never_sql(
    single_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    # The scope travels as literals in the BEGIN message: each of these must come back as it
    # went, and none may end the literal early.
    awkward = (
        "o'brien",
        "x'); SELECT set_config('app.tenant_id', NULL, true); --",
        "back\\'slash",
        "\\",
        "E'\\x41'",
        "$$dollar$$",
        "semi;colon",
        "tab\tnew\nline",
        "ünï€ødé 🙂",
    )
    tenant = uuid.uuid4()
    for text in awkward:
        scope = TenantScope(tenant, text, frozenset({"issuer"}), (text, "plain"))
        async with tenant_transaction(single_pool, scope) as conn:
            row = await conn.fetchrow(SETTINGS)
            assert row["user"] == text
            assert row["tenant"] == tenant
            assert row["departments"] == [text, "plain"]
    assert await owner_pool.fetchval("SELECT count(*) FROM tenants WHERE id = $1", tenant) == 1


async def test_begin_and_the_scope_are_one_message(single_pool: asyncpg.Pool) -> None:
    sent: list[str] = []

    def log(record: Any) -> None:
        sent.append(record.query)

    async with single_pool.acquire() as conn:
        conn.add_query_logger(log)
    tenant = uuid.uuid4()
    async with tenant_transaction(single_pool, alice(tenant)) as conn:
        await conn.fetchval("SELECT 1")
    async with tenant_transaction(single_pool, alice(tenant), readonly=True) as conn:
        pass
    await asyncio.sleep(0.05)  # the logger runs from the event loop
    async with single_pool.acquire() as conn:
        conn.remove_query_logger(log)
    assert len(sent) == 5, sent  # begin with scope and provisioning, SELECT 1, COMMIT; twice
    first, _, commit, readonly, _ = sent
    assert first.startswith("BEGIN;") and "set_config('app.tenant_id'" in first
    assert "INSERT INTO tenants" in first
    assert commit.startswith("COMMIT")
    assert readonly.startswith("BEGIN READ ONLY;") and "INSERT" not in readonly


async def test_a_nested_block_is_a_savepoint(single_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    async with tenant_transaction(single_pool, service_scope(tenant)) as conn:
        with pytest.raises(asyncpg.UndefinedTableError):
            async with conn.transaction():
                await conn.execute("SELECT * FROM no_such_table")
        # The savepoint rolled back alone: the transaction and its scope go on.
        assert (await conn.fetchrow(SETTINGS))["tenant"] == tenant


async def test_a_failed_begin_leaves_the_connection_usable(
    single_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    async with single_pool.acquire() as conn:
        await conn.execute("SET default_transaction_read_only = on")
    try:
        # The provisioning in the BEGIN message fails: nothing was begun for the caller.
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            async with tenant_transaction(single_pool, service_scope(tenant)):
                pytest.fail("the block must not run")
        # A value the client cannot even encode fails before anything is sent.
        with pytest.raises(UnicodeEncodeError):
            async with tenant_transaction(
                single_pool, TenantScope(tenant, "\udc80", frozenset()), readonly=True
            ):
                pytest.fail("the block must not run")
    finally:
        async with single_pool.acquire() as conn:
            await conn.execute("RESET default_transaction_read_only")
    with pytest.raises(ValueError, match="NUL"):
        async with tenant_transaction(single_pool, TenantScope(tenant, "a\x00b", frozenset())):
            pytest.fail("the block must not run")
    async with tenant_transaction(single_pool, service_scope(tenant)) as conn:
        assert await conn.fetchval("SHOW transaction_read_only") == "off"
        assert (await conn.fetchrow(SETTINGS))["tenant"] == tenant
    # The failed first write did not count as provisioned: this one provisioned.
    assert await owner_pool.fetchval("SELECT count(*) FROM tenants WHERE id = $1", tenant) == 1


async def test_tenant_is_provisioned_once_on_first_write(
    single_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()

    async def exists() -> bool:
        return bool(await owner_pool.fetchval("SELECT count(*) FROM tenants WHERE id = $1", tenant))

    # Read-only transactions do not provision (and cannot write).
    async with tenant_transaction(single_pool, service_scope(tenant), readonly=True) as conn:
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("INSERT INTO tenants (id) VALUES ($1)", tenant)
    assert not await exists()

    # A rolled-back first use does not count as provisioned ...
    with pytest.raises(RuntimeError):
        async with tenant_transaction(single_pool, service_scope(tenant)):
            raise RuntimeError("boom")
    assert not await exists()

    # ... the next one provisions; later ones do not insert again.
    async with tenant_transaction(single_pool, service_scope(tenant)):
        pass
    assert await exists()
    await owner_pool.execute("DELETE FROM tenants WHERE id = $1", tenant)
    async with tenant_transaction(single_pool, service_scope(tenant)):
        pass
    assert not await exists(), "remembered per pool: no second INSERT"


async def test_each_pool_provisions_for_itself(
    db_settings: Settings, owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    async with tenant_transaction(app_pool, service_scope(tenant)):
        pass
    await owner_pool.execute("DELETE FROM tenants WHERE id = $1", tenant)
    fresh = await create_pool(db_settings.app_database_url, max_size=1)
    try:
        async with tenant_transaction(fresh, service_scope(tenant)):
            pass
    finally:
        await fresh.close()
    assert await owner_pool.fetchval("SELECT count(*) FROM tenants WHERE id = $1", tenant) == 1


def test_scopes() -> None:
    tenant = uuid.uuid4()
    worker = service_scope(tenant)
    assert worker == TenantScope(tenant, "system:worker", frozenset({"service"}), ())
    assert service_scope(tenant, "relay").user_id == "relay"
    made = user_scope(tenant, "bob", ["issuer"], iter(["sales"]))
    assert made.roles == frozenset({"issuer"}) and made.departments == ("sales",)
    with pytest.raises(ValueError, match="unknown roles"):
        TenantScope(tenant, "u", frozenset({"root"}))
    with pytest.raises(ValueError):
        TenantScope(tenant, "", frozenset())
    with pytest.raises(TypeError):
        TenantScope(str(tenant), "u", frozenset())  # type: ignore[arg-type]


def test_only_tenancy_sets_app_settings() -> None:
    """Nothing but credbatch/tenancy.py may set app.* (set_config or SET [LOCAL])."""
    pattern = re.compile(
        r"set_config\s*\(\s*['\"]app\.|\bSET\s+(LOCAL\s+|SESSION\s+)?app\.", re.IGNORECASE
    )
    allowed = {ROOT / "credbatch" / "tenancy.py"}
    offenders = []
    for top in ("credbatch", "services", "workers", "bench"):
        for path in (ROOT / top).rglob("*"):
            if path.suffix not in {".py", ".sql"} or path in allowed or "gen" in path.parts:
                continue
            if pattern.search(path.read_text(errors="replace")):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
