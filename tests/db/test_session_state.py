"""No session state outside the migration runner: every role but the owner goes through
PgBouncer in transaction mode (docs/connections.md), where the next transaction of a client may
run on another server connection.

The code is read for each kind of session state transaction pooling forbids; the one place
allowed it (the owner's migrations, which connect directly) is named. Then, through the
PgBouncer this suite can run behind, the same session state is shown to leak between clients:
the reason for the rule.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.pgbouncer import running_pgbouncer, through

ROOT = Path(__file__).resolve().parents[2]
# The owner's migrations connect directly, never through PgBouncer: a session advisory lock
# serialises concurrent runs, session settings name the roles for the SQL files.
DIRECT = {ROOT / "credbatch" / "db" / "migrate.py", ROOT / "credbatch" / "db" / "migrations"}
FORBIDDEN = {
    "session set_config": re.compile(r"set_config\([^)]*,\s*(false|False)\s*\)", re.IGNORECASE),
    # A statement beginning with SET (not SET LOCAL), RESET or DISCARD; SQL is upper case here.
    "session SET": re.compile(
        r"""["']\s*(SET\s+(?!LOCAL\b)\w+\s*(=|TO\b)|RESET\s+\w|DISCARD\s+\w)"""
    ),
    "session advisory lock": re.compile(r"pg_(try_)?advisory_lock(_shared)?\s*\(", re.IGNORECASE),
    "LISTEN": re.compile(r"\bLISTEN\s+\w|add_listener\("),
    "temporary table": re.compile(r"CREATE\s+(TEMP|TEMPORARY)\s+TABLE", re.IGNORECASE),
    "WITH HOLD cursor": re.compile(r"WITH\s+HOLD", re.IGNORECASE),
    # An explicit prepared statement outlives its transaction on the server.
    "prepared statement": re.compile(r"\.prepare\(|\bPREPARE\s+\w+\s+(AS|\()", re.IGNORECASE),
}


def _sources() -> list[Path]:
    files = [
        path
        for directory in ("credbatch", "services", "workers")
        for path in (ROOT / directory).rglob("*")
        if path.suffix in (".py", ".sql") and "gen" not in path.relative_to(ROOT).parts
    ]
    assert len(files) > 100
    return files


def uses(text: str) -> set[str]:
    """The kinds of session state ``text`` uses."""
    # SQL comments say why a function has no SET clause; they run nothing.
    code = re.sub(r"--[^\n]*", "", text)
    return {kind for kind, pattern in FORBIDDEN.items() if pattern.search(code)}


def test_the_patterns_find_each_kind_of_session_state() -> None:
    """Guards the search below: each pattern catches what it is for, and not its safe twin."""
    assert uses("SELECT set_config('app.tenant_id', $1, false)") == {"session set_config"}
    assert uses('await conn.execute("SET statement_timeout = 0")') == {"session SET"}
    assert uses("await conn.execute('RESET ALL')") == {"session SET"}
    assert uses("SELECT pg_advisory_lock($1)") == {"session advisory lock"}
    assert uses("await conn.add_listener('jobs', callback)") == {"LISTEN"}
    assert uses("CREATE TEMP TABLE t (x int)") == {"temporary table"}
    assert uses("DECLARE c CURSOR WITH HOLD FOR SELECT 1") == {"WITH HOLD cursor"}
    assert uses("stmt = await conn.prepare('SELECT 1')") == {"prepared statement"}
    # Transaction-scoped twins, and function clauses PostgreSQL undoes on return.
    assert not uses("SELECT set_config('app.tenant_id', $1, true)")
    assert not uses('await conn.execute("SET LOCAL check_function_bodies = off")')
    assert not uses("PERFORM pg_advisory_xact_lock(42)")
    assert not uses("LANGUAGE sql\nSET search_path = pg_catalog, public, pg_temp\nAS $$")
    assert not uses('"""\nUPDATE t\nSET token = $3\n"""')


def test_only_the_direct_migration_runner_keeps_session_state() -> None:
    found = {
        str(path.relative_to(ROOT)): kinds
        for path in _sources()
        if not DIRECT & {path, path.parent} and (kinds := uses(path.read_text()))
    }
    assert found == {}
    # The runner does use them, so the search above is looking at real code.
    assert uses((ROOT / "credbatch" / "db" / "migrate.py").read_text()) >= {
        "session set_config",
        "session advisory lock",
    }


@pytest.mark.integration
async def test_session_state_leaks_between_clients_through_pgbouncer(
    db_settings: Settings,
) -> None:
    """Why the rules above: behind PgBouncer in transaction mode a session setting reaches
    another client, and a tenant_transaction's setting reaches no one."""
    app_user = urlsplit(db_settings.app_database_url).username or "credbatch_app"
    with running_pgbouncer(db_settings.database_url, {app_user}) as port:
        url = through(db_settings.app_database_url, port)
        first = await asyncpg.connect(url, statement_cache_size=0)
        second = await asyncpg.connect(url, statement_cache_size=0)
        pool = await create_pool(url, max_size=1, statement_cache_size=0)
        try:
            await first.execute("SELECT set_config('app.leak', 'from-first', false)")
            # The idle server connection the first client just used serves the next
            # transaction, whichever client sends it.
            leaked = await second.fetchval("SELECT current_setting('app.leak', true)")
            assert leaked == "from-first"
            tenant = uuid.uuid4()
            async with tenant_transaction(pool, service_scope(tenant)) as conn:
                assert await conn.fetchval("SELECT current_setting('app.tenant_id')") == str(tenant)
            after = await second.fetchval("SELECT current_setting('app.tenant_id', true)")
            assert after in (None, "")
        finally:
            await pool.close()
            await first.close()
            await second.close()
