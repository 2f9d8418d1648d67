"""Schema migrations: plain SQL files applied in order, each once, each in its own transaction.

Files live in ``credbatch/db/migrations`` and are named ``NNNN_name.sql``. The runner
connects as the owner (``Settings.database_url``), serialises concurrent runs with an
advisory lock, makes sure the application role exists with the right attributes, then
applies what is missing and records it in ``schema_migrations`` with the file's checksum.
An applied file must never change: a different checksum is an error.

Run it with ``python -m credbatch.db.migrate``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg

from credbatch.config import APP_ROLE, MONITOR_ROLE, load_settings

log = logging.getLogger("credbatch.db.migrate")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# pg_advisory_lock key shared by every runner of this schema ("credbatch" in ASCII).
_LOCK_KEY = 0x6372656462617463
_FILE_RE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    """The migrations on disk and in the database disagree, or a file is malformed."""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: str
    name: str
    sql: str
    checksum: str


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Read the migration files of ``directory``, ordered by version."""
    found: dict[str, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        version = match["version"]
        if version in found:
            raise MigrationError(f"two migrations have version {version}")
        data = path.read_bytes()
        found[version] = Migration(
            version=version,
            name=match["name"],
            sql=data.decode("utf-8"),
            checksum=hashlib.sha256(data).hexdigest(),
        )
    return [found[v] for v in sorted(found)]


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def database_name(url: str) -> str:
    """The database named by a ``postgresql://`` URL (path, or ``dbname`` query parameter)."""
    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    if not name:
        query = parse_qs(parts.query)
        name = (query.get("dbname") or query.get("database") or [""])[0]
    if not name:
        raise MigrationError("the database URL names no database")
    return name


async def ensure_database(owner_url: str) -> bool:
    """Create the database named in ``owner_url`` unless it exists; True when created.

    Connects as the same user to the ``postgres`` maintenance database of the same server.
    """
    name = database_name(owner_url)
    conn = await asyncpg.connect(owner_url, database="postgres")
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        try:
            await conn.execute(f"CREATE DATABASE {_quote_ident(name)}")
        except asyncpg.DuplicateDatabaseError:
            return False  # created concurrently by another runner
        log.info("created database %s", name)
        return True
    finally:
        await conn.close()


async def ensure_app_role(conn: asyncpg.Connection, role: str = APP_ROLE) -> None:
    """Create the application role, or restore its attributes; idempotent.

    Roles are cluster-wide, so several databases (and runners) share it. It can log in but is
    no superuser, cannot bypass RLS, create databases or roles, and owns nothing.
    """
    ident, literal = _quote_ident(role), _quote_literal(role)
    attributes = "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION"
    await conn.execute(f"""
DO $$
DECLARE
  r pg_catalog.pg_roles%ROWTYPE;
BEGIN
  SELECT * INTO r FROM pg_catalog.pg_roles WHERE rolname = {literal};
  IF NOT FOUND THEN
    BEGIN
      CREATE ROLE {ident} {attributes};
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;  -- created concurrently by a runner of another database
    END;
  ELSIF r.rolsuper OR r.rolbypassrls OR r.rolcreatedb OR r.rolcreaterole OR r.rolreplication
        OR NOT r.rolcanlogin THEN
    ALTER ROLE {ident} {attributes};
  END IF;
END
$$""")
    if await conn.fetchval(
        "SELECT $1 = current_user OR pg_has_role($1, current_user, 'MEMBER')", role
    ):
        raise MigrationError(
            f"the application role {role!r} must be neither the owner migrations connect as "
            "nor a member of it: RLS would not isolate tenants"
        )
    database = await conn.fetchval("SELECT current_database()")
    await conn.execute(f"GRANT CONNECT ON DATABASE {_quote_ident(database)} TO {ident}")
    await conn.execute(f"GRANT USAGE ON SCHEMA public TO {ident}")


async def ensure_monitor_role(conn: asyncpg.Connection, role: str = MONITOR_ROLE) -> None:
    """Create the read-only monitoring role (autoscalers log in as it); idempotent.

    It may connect and call the functions migrations grant it (the dispatchable backlog),
    nothing else: no table privileges, no RLS bypass. Its password is set by the operator.
    """
    ident, literal = _quote_ident(role), _quote_literal(role)
    attributes = "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION"
    await conn.execute(f"""
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {literal}) THEN
    BEGIN
      CREATE ROLE {ident} {attributes};
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;  -- created concurrently by a runner of another database
    END;
  END IF;
END
$$""")
    database = await conn.fetchval("SELECT current_database()")
    await conn.execute(f"GRANT CONNECT ON DATABASE {_quote_ident(database)} TO {ident}")
    await conn.execute(f"GRANT USAGE ON SCHEMA public TO {ident}")


_SCHEMA_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    text        PRIMARY KEY,
  name       text        NOT NULL,
  checksum   text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE schema_migrations IS
  'Migrations applied by credbatch.db.migrate (owner only; no tenant data, no RLS).';
"""


async def migrate(
    owner_url: str, *, directory: Path = MIGRATIONS_DIR, app_role: str = APP_ROLE
) -> list[str]:
    """Apply the pending migrations as the owner; returns the versions applied now.

    Safe to run concurrently and repeatedly: runners queue on an advisory lock, and a
    migration already recorded is skipped (its checksum must still match the file).
    """
    migrations = discover(directory)
    conn = await asyncpg.connect(owner_url)
    try:
        # Session-level lock: released by unlock, or by the server when the connection ends.
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        applied = await _migrate_locked(conn, migrations, app_role)
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        return applied
    finally:
        await conn.close()


async def _migrate_locked(
    conn: asyncpg.Connection, migrations: list[Migration], app_role: str
) -> list[str]:
    # Read by grant_app() in the migrations; session-wide for this runner's connection.
    await conn.execute("SELECT set_config('credbatch.app_role', $1, false)", app_role)
    await conn.execute("SET lock_timeout = '60s'")
    await ensure_app_role(conn, app_role)
    await conn.execute("SELECT set_config('credbatch.monitor_role', $1, false)", MONITOR_ROLE)
    await ensure_monitor_role(conn)
    await conn.execute(_SCHEMA_MIGRATIONS)
    recorded = {
        row["version"]: row["checksum"]
        for row in await conn.fetch("SELECT version, checksum FROM schema_migrations")
    }
    on_disk = {m.version for m in migrations}
    for version in sorted(set(recorded) - on_disk):
        log.warning("migration %s is applied but has no file here (newer schema?)", version)
    for m in migrations:
        if m.version in recorded and recorded[m.version] != m.checksum:
            raise MigrationError(
                f"migration {m.version}_{m.name} was changed after it was applied; "
                "add a new migration instead"
            )
    applied: list[str] = []
    for m in migrations:
        if m.version in recorded:
            continue
        async with conn.transaction():
            await conn.execute(m.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                m.version,
                m.name,
                m.checksum,
            )
        log.info("applied migration %s_%s", m.version, m.name)
        applied.append(m.version)
    return applied


async def _run() -> list[str]:
    settings = load_settings()
    await ensure_database(settings.database_url)
    return await migrate(settings.database_url)


def main() -> int:
    """``python -m credbatch.db.migrate``: create the database if needed and migrate it."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        applied = asyncio.run(_run())
    except MigrationError as exc:
        print(f"migration failed: {exc}", file=sys.stderr)
        return 1
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
