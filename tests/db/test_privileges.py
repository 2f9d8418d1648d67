"""docs/privileges.md is the allow-list of the migrated database's privileges.

Two lists are compared with the catalog: every SECURITY DEFINER function with the roles that
may execute it (``pg_proc.proacl``, PUBLIC's default included), and every role's privileges on
every table, view and sequence (``pg_class.relacl``). The owner is left out of both. A grant
added, widened or taken back, in a migration or a function file, fails here until the page
says so; a role's column privileges fail here always (the page lists none).
"""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
import pytest

from credbatch.config import APP_ROLE
from credbatch.db.migrate import FUNCTIONS_DIR, PROCESS_ROLES

DOC = Path(__file__).resolve().parents[2] / "docs" / "privileges.md"
_ROW = re.compile(r"^\| `(?P<object>[^`]+)` \| (?P<second>[^|]+?) \| (?P<third>[^|]+?) \|$")
_ROLE = re.compile(r"`([a-z_]+|PUBLIC)`")
# Privileges in the order GRANT and the page name them.
_ORDER = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "USAGE"]

_DEFINER_GRANTEES = """
SELECT p.proname || '(' || oidvectortypes(p.proargtypes) || ')' AS function,
       coalesce((SELECT array_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                                       ELSE pg_get_userbyid(a.grantee) END)
                 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                 WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner),
                '{}') AS grantees
FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace AND p.prosecdef
"""
_TABLE_GRANTS = """
SELECT c.relname AS relation,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS grantee,
       array_agg(a.privilege_type) AS privileges
FROM pg_class c
CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault(
  CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND a.grantee <> c.relowner
GROUP BY c.relname, a.grantee
"""
_COLUMN_GRANTS = """
SELECT c.relname || '.' || a.attname AS column_name, a.attacl::text AS acl
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relnamespace = 'public'::regnamespace AND a.attacl IS NOT NULL
"""


def _rows(heading: str) -> list[tuple[str, str, str]]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    found = [_ROW.match(line) for line in lines[start:end]]
    return [(m["object"], m["second"], m["third"]) for m in found if m]


def documented_functions() -> dict[str, frozenset[str]]:
    rows = _rows("## Functions that run as the owner")
    assert rows and len({f for f, _, _ in rows}) == len(rows), "each function once"
    return {function: frozenset(_ROLE.findall(roles)) for function, roles, _ in rows}


def documented_tables() -> dict[tuple[str, str], str]:
    rows = _rows("## Table privileges")
    assert rows and len({(t, r) for t, r, _ in rows}) == len(rows), "each table and role once"
    return {(table, role.strip("`")): privileges for table, role, privileges in rows}


def _listed(privileges: list[str]) -> str:
    return ", ".join(sorted(privileges, key=_ORDER.index))


async def test_definer_functions_are_executable_by_the_documented_roles_only(
    owner_pool: asyncpg.Pool,
) -> None:
    rows = await owner_pool.fetch(_DEFINER_GRANTEES)
    in_catalog = {r["function"]: frozenset(r["grantees"]) for r in rows}
    assert in_catalog == documented_functions()


async def test_every_table_privilege_is_documented(owner_pool: asyncpg.Pool) -> None:
    rows = await owner_pool.fetch(_TABLE_GRANTS)
    in_catalog = {(r["relation"], r["grantee"]): _listed(r["privileges"]) for r in rows}
    assert in_catalog == documented_tables()


async def test_no_role_has_a_column_privilege(owner_pool: asyncpg.Pool) -> None:
    assert await owner_pool.fetch(_COLUMN_GRANTS) == []


def test_the_page_names_each_role_it_grants_to() -> None:
    described = {role for role, _, _ in _rows("## Roles")}
    granted = set().union(*documented_functions().values()) | {
        role for _, role in documented_tables()
    }
    assert granted <= described


@pytest.mark.parametrize(
    "function", ["batch_counts_fold(uuid, uuid)", "status_list_tokens_due(integer)"]
)
async def test_a_function_file_takes_back_the_application_role_s_earlier_grant(
    owner_pool: asyncpg.Pool, function: str
) -> None:
    # A database migrated while the application role could run it: the file, applied again
    # as the runner does, leaves the grant to the role the page names alone.
    name = function.split("(")[0]
    async with owner_pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("SELECT set_config('credbatch.app_role', $1, true)", APP_ROLE)
            for what, role in PROCESS_ROLES:
                await conn.execute(f"SELECT set_config('credbatch.{what}_role', $1, true)", role)
            await conn.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {APP_ROLE}")
            await conn.execute((FUNCTIONS_DIR / f"{name}.sql").read_text())
            assert not await conn.fetchval(
                "SELECT has_function_privilege($1, $2, 'EXECUTE')", APP_ROLE, function
            )
            granted = documented_functions()[function]
            for role in granted:
                assert await conn.fetchval(
                    "SELECT has_function_privilege($1, $2, 'EXECUTE')", role, function
                )
        finally:
            await tx.rollback()
