"""The application role: what it is, what it owns, what it may touch."""

from __future__ import annotations

import asyncpg

from credbatch.config import APP_ROLE, Settings


async def test_app_role_attributes(owner_pool: asyncpg.Pool) -> None:
    role = await owner_pool.fetchrow("SELECT * FROM pg_roles WHERE rolname = $1", APP_ROLE)
    assert role is not None
    assert role["rolcanlogin"]
    assert not role["rolsuper"]
    assert not role["rolbypassrls"]
    assert not role["rolcreatedb"]
    assert not role["rolcreaterole"]
    assert not role["rolreplication"]


async def test_app_pool_connects_as_app_role(app_pool: asyncpg.Pool, db_settings: Settings) -> None:
    assert await app_pool.fetchval("SELECT current_user") == APP_ROLE
    assert await app_pool.fetchval("SELECT session_user") == APP_ROLE


async def test_app_role_owns_nothing(owner_pool: asyncpg.Pool) -> None:
    owned = await owner_pool.fetch(
        """
        SELECT 'class' AS kind, relname::text AS name FROM pg_class
        WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = $1)
        UNION ALL
        SELECT 'proc', proname::text FROM pg_proc
        WHERE proowner = (SELECT oid FROM pg_roles WHERE rolname = $1)
        UNION ALL
        SELECT 'schema', nspname::text FROM pg_namespace
        WHERE nspowner = (SELECT oid FROM pg_roles WHERE rolname = $1)
        UNION ALL
        SELECT 'type', typname::text FROM pg_type
        WHERE typowner = (SELECT oid FROM pg_roles WHERE rolname = $1)
        """,
        APP_ROLE,
    )
    assert owned == []


async def test_app_role_is_not_the_owner_or_a_member(owner_pool: asyncpg.Pool) -> None:
    owners = {
        r["owner"]
        for r in await owner_pool.fetch(
            "SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace"
        )
    }
    assert APP_ROLE not in owners
    for owner in owners:
        assert not await owner_pool.fetchval(
            "SELECT pg_has_role($1, $2, 'MEMBER')", APP_ROLE, owner
        )


async def test_app_role_privileges(app_pool: asyncpg.Pool) -> None:
    async def can(obj: str, privilege: str) -> bool:
        result: bool = await app_pool.fetchval(
            "SELECT has_table_privilege(current_user, $1, $2)", obj, privilege
        )
        return result

    assert not await can("schema_migrations", "SELECT")
    assert not await can("tenants", "UPDATE")
    assert not await can("tenants", "DELETE")
    # Immutable schema versions; batch history and records are never deleted.
    assert not await can("credential_schema_versions", "UPDATE")
    assert not await can("batches", "DELETE")
    assert not await can("records", "DELETE")
    assert await can("records", "UPDATE")
    for table in ("batches", "records", "credentials", "signing_keys"):
        assert not await can(table, "TRUNCATE")
        assert not await can(table, "REFERENCES")
        assert not await can(table, "TRIGGER")
    assert not await app_pool.fetchval("SELECT has_schema_privilege('public', 'CREATE')")
    assert not await app_pool.fetchval(
        "SELECT has_function_privilege('grant_app(text, text)', 'EXECUTE')"
    )
    # The outbox functions belong to the relay's role (tests/security/test_outbox_privileges.py).
    claim = (
        "outbox_claim(integer, integer, integer, integer, double precision, double precision,"
        " integer)"
    )
    for fn in (claim, "outbox_mark_queued(uuid[], uuid[])"):
        assert not await app_pool.fetchval("SELECT has_function_privilege($1, 'EXECUTE')", fn)
        assert not await app_pool.fetchval(
            "SELECT has_function_privilege('public', $1, 'EXECUTE')", fn
        )


async def test_app_role_cannot_create_or_alter(app_pool: asyncpg.Pool) -> None:
    for statement in (
        "CREATE TABLE sneaky (id int)",
        "ALTER TABLE batches DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE batches NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY batches_select ON batches",
        "SET row_security = off; SELECT count(*) FROM batches",
    ):
        async with app_pool.acquire() as conn:
            try:
                await conn.execute(statement)
            except asyncpg.PostgresError as exc:
                assert exc.sqlstate == "42501" or isinstance(
                    exc, asyncpg.InsufficientPrivilegeError
                ), statement
            else:
                raise AssertionError(f"{statement!r} was allowed")
