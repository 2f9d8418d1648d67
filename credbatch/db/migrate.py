"""Schema migrations and stored code, applied as the owner in one transaction per run.

Three folders of plain SQL under ``credbatch/db`` describe the database:

* ``migrations/NNNN_name.sql``, versioned: tables, types, indexes, constraints, row-level
  security policies, grants on tables and data. Each is applied once, in version order, and
  recorded in ``schema_migrations`` with its checksum. An applied file must never change (a
  different checksum is an error): a change to the schema is a new migration.
* ``functions/<name>.sql``: the stored function ``<name>`` (``CREATE OR REPLACE FUNCTION``,
  its comment and its EXECUTE grants); ``functions/README.md`` says how to write one.
* ``triggers/<name>.sql``: the trigger ``<name>`` (``CREATE OR REPLACE TRIGGER``).

Function and trigger files are repeatable: applied when first seen and again whenever their
text changes, recorded in ``schema_repeatables`` with their checksum, skipped otherwise.
Changing a function or a trigger is editing its file.

The runner connects as the owner (``Settings.database_url``), serialises concurrent runs with
an advisory lock, makes sure the application and monitoring roles and each process's own
role (``PROCESS_ROLES``) exist with the right attributes, then, in one transaction (a run
applies everything or nothing):

1. applies the function files whose checksum changed, with ``check_function_bodies`` off, so
   that a body may name a table or column a pending migration creates. Functions come first
   because migrations need them: row-level security policies call ``app_tenant()``, table
   grants call ``grant_app()``. The grant helpers (``grant_*.sql``) go before the other files,
   whose own grants call them. A file whose signature names a type that does not exist yet
   (a pending migration creates it) is set aside, each file being tried in a savepoint;
2. applies the pending migrations in version order, then the function files set aside;
3. applies the trigger files whose checksum changed (their tables exist by now);
4. checks the bodies of the functions applied, or of every function when a migration was
   applied, with their language's validator: what ``CREATE FUNCTION`` checks when
   ``check_function_bodies`` is on, against the schema the run leaves.

A file that fails names itself in the ``MigrationError``. A database whose history is not
the one in ``migrations/`` (one migrated before the schema was folded into its current
baseline, or a migration recorded under another name) is refused: it holds development or
test data only, and is dropped and created again.

Run it with ``python -m credbatch.db.migrate``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg

from credbatch.config import (
    APP_ROLE,
    JANITOR_ROLE,
    MONITOR_ROLE,
    PUBLIC_ROLE,
    REFRESHER_ROLE,
    RELAY_ROLE,
    SIGNER_ROLE,
    WEBHOOKS_ROLE,
    load_settings,
)

log = logging.getLogger("credbatch.db.migrate")

_DB_DIR = Path(__file__).parent
MIGRATIONS_DIR = _DB_DIR / "migrations"
FUNCTIONS_DIR = _DB_DIR / "functions"
TRIGGERS_DIR = _DB_DIR / "triggers"
# pg_advisory_lock key shared by every runner of this schema ("credbatch" in ASCII).
_LOCK_KEY = 0x6372656462617463
_FILE_RE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
_REPEATABLE_RE = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)\.sql$")
# Function files applied before the others: the migration helpers the others' grants call.
_HELPER_PREFIX = "grant_"

Kind = Literal["function", "trigger"]


class MigrationError(Exception):
    """The migrations on disk and in the database disagree, or a file is malformed or fails."""


@dataclass(frozen=True)
class Migration:
    """One versioned migration file."""

    version: str
    name: str
    sql: str
    checksum: str


@dataclass(frozen=True)
class Repeatable:
    """One function or trigger file, named after the object it defines."""

    kind: Kind
    name: str
    sql: str
    checksum: str

    @property
    def path(self) -> str:
        """The file, relative to ``credbatch/db``, for messages."""
        return f"{self.kind}s/{self.name}.sql"


@dataclass
class Applied:
    """What one run applied: migration versions, function and trigger names, in order."""

    migrations: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.migrations or self.functions or self.triggers)


def _checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


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
            version=version, name=match["name"], sql=data.decode("utf-8"), checksum=_checksum(data)
        )
    return [found[v] for v in sorted(found)]


def discover_repeatables(directory: Path, kind: Kind) -> list[Repeatable]:
    """Read the function or trigger files of ``directory`` in the order they are applied.

    Name order, except that function files named ``grant_*`` come first. A missing directory
    holds none; files other than ``*.sql`` (a README) are not read.
    """
    found: list[Repeatable] = []
    for path in sorted(directory.glob("*.sql")):
        match = _REPEATABLE_RE.match(path.name)
        if match is None:
            raise MigrationError(
                f"{kind}s/{path.name}: {kind} files are named after the {kind}, <name>.sql"
            )
        data = path.read_bytes()
        found.append(Repeatable(kind, match["name"], data.decode("utf-8"), _checksum(data)))
    if kind == "function":
        found.sort(key=lambda r: (not r.name.startswith(_HELPER_PREFIX), r.name))
    return found


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


_LOGIN_ONLY = "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION"


async def _ensure_login_role(conn: asyncpg.Connection, role: str, what: str) -> None:
    """Create ``role`` as a plain login role, or restore those attributes; idempotent.

    Roles are cluster-wide, so several databases (and runners) share it. It can log in but is
    no superuser, cannot bypass RLS, create databases or roles, and owns nothing.
    """
    ident, literal = _quote_ident(role), _quote_literal(role)
    await conn.execute(f"""
DO $$
DECLARE
  r pg_catalog.pg_roles%ROWTYPE;
BEGIN
  SELECT * INTO r FROM pg_catalog.pg_roles WHERE rolname = {literal};
  IF NOT FOUND THEN
    BEGIN
      CREATE ROLE {ident} {_LOGIN_ONLY};
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;  -- created concurrently by a runner of another database
    END;
  ELSIF r.rolsuper OR r.rolbypassrls OR r.rolcreatedb OR r.rolcreaterole OR r.rolreplication
        OR NOT r.rolcanlogin THEN
    ALTER ROLE {ident} {_LOGIN_ONLY};
  END IF;
END
$$""")
    if await conn.fetchval(
        "SELECT $1 = current_user OR pg_has_role($1, current_user, 'MEMBER')", role
    ):
        raise MigrationError(
            f"the {what} role {role!r} must be neither the owner migrations connect as "
            "nor a member of it: RLS would not isolate tenants"
        )
    database = await conn.fetchval("SELECT current_database()")
    await conn.execute(f"GRANT CONNECT ON DATABASE {_quote_ident(database)} TO {ident}")
    await conn.execute(f"GRANT USAGE ON SCHEMA public TO {ident}")


async def ensure_app_role(conn: asyncpg.Connection, role: str = APP_ROLE) -> None:
    """Create the application role, or restore its attributes; idempotent."""
    await _ensure_login_role(conn, role, "application")


# The login roles of single processes, beside the application role: (what, role). Each is
# named in the session setting ``credbatch.<what>_role``, which its grant helper
# (functions/grant_<what>.sql) reads; the function files grant each role only the functions
# its process runs, and no migration grants any of them a table.
#
# * relay: the outbox functions that claim and mark records of every tenant, the sweeper,
#   the count fold; a tenant-scoped session running them could lock or move every tenant's
#   records.
# * webhooks: the claim of every tenant's due deliveries (the dispatchers read and record
#   each delivery as the application role, in its tenant's transaction).
# * public: the internet-facing endpoints; they reach issuer keys, status list tokens,
#   certificates, claims and OID4VCI offers, tokens and nonces through functions that answer
#   exactly what the endpoints serve, and never a recipient's contact data, a wrapped key or
#   a webhook secret.
# * signer: a record's stored credential and its tenant's wrapped signing key (it holds the
#   KEK), through two functions.
# * refresher: the issuance workers' listing of every tenant's due status list tokens.
# * janitor: the retention purge and the pruning, which erase and delete rows of every
#   tenant.
PROCESS_ROLES = (
    ("relay", RELAY_ROLE),
    ("webhooks", WEBHOOKS_ROLE),
    ("public", PUBLIC_ROLE),
    ("signer", SIGNER_ROLE),
    ("refresher", REFRESHER_ROLE),
    ("janitor", JANITOR_ROLE),
)


async def ensure_process_role(
    conn: asyncpg.Connection, role: str, app_role: str = APP_ROLE, what: str = "process"
) -> None:
    """Create a process's own login role, or restore its attributes; idempotent.

    The application role must not be a member of it (nor it of the application role), or
    every tenant-scoped session could run that process's functions too, and that process
    could read every table the application role may.
    """
    await _ensure_login_role(conn, role, what)
    if await conn.fetchval(
        "SELECT $1 = $2 OR pg_has_role($2, $1, 'MEMBER') OR pg_has_role($1, $2, 'MEMBER')",
        role,
        app_role,
    ):
        raise MigrationError(
            f"the {what} role {role!r} and the application role {app_role!r} must be distinct "
            "and neither a member of the other"
        )


async def ensure_monitor_role(conn: asyncpg.Connection, role: str = MONITOR_ROLE) -> None:
    """Create the read-only monitoring role (autoscalers log in as it); idempotent.

    It may connect and call the functions granted to it (the dispatchable backlog),
    nothing else: no table privileges, no RLS bypass. Its password is set by the operator.
    """
    ident, literal = _quote_ident(role), _quote_literal(role)
    await conn.execute(f"""
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {literal}) THEN
    BEGIN
      CREATE ROLE {ident} {_LOGIN_ONLY};
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;  -- created concurrently by a runner of another database
    END;
  END IF;
END
$$""")
    database = await conn.fetchval("SELECT current_database()")
    await conn.execute(f"GRANT CONNECT ON DATABASE {_quote_ident(database)} TO {ident}")
    await conn.execute(f"GRANT USAGE ON SCHEMA public TO {ident}")


_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    text        PRIMARY KEY,
  name       text        NOT NULL,
  checksum   text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE schema_migrations IS
  'Migrations applied by credbatch.db.migrate (owner only; no tenant data, no RLS).';
CREATE TABLE IF NOT EXISTS schema_repeatables (
  kind       text        NOT NULL CHECK (kind IN ('function', 'trigger')),
  name       text        NOT NULL,
  checksum   text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kind, name)
);
COMMENT ON TABLE schema_repeatables IS
  'Function and trigger files (credbatch/db/functions, credbatch/db/triggers) as last applied '
  'by credbatch.db.migrate, which applies a file again when its checksum changes (owner only; '
  'no tenant data, no RLS).';
"""

_RECORD_REPEATABLE = """
INSERT INTO schema_repeatables (kind, name, checksum) VALUES ($1, $2, $3)
ON CONFLICT (kind, name) DO UPDATE SET checksum = excluded.checksum, applied_at = now()
"""

# What CREATE FUNCTION checks with check_function_bodies on, asked of each function named.
_FUNCTIONS_TO_VALIDATE = """
SELECT p.proname::text AS name, p.oid, l.lanvalidator::regproc::text AS validator
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE p.pronamespace = 'public'::regnamespace AND l.lanvalidator <> 0
  AND ($1::text[] IS NULL OR p.proname = ANY ($1::text[]))
ORDER BY p.proname, p.oid
"""

_FUNCTION_EXISTS = """
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc
               WHERE proname = $1 AND pronamespace = 'public'::regnamespace)
"""

_TRIGGER_EXISTS = """
SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
               JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
               WHERE t.tgname = $1 AND NOT t.tgisinternal
                 AND c.relnamespace = 'public'::regnamespace)
"""


async def migrate(
    owner_url: str,
    *,
    migrations_dir: Path = MIGRATIONS_DIR,
    functions_dir: Path = FUNCTIONS_DIR,
    triggers_dir: Path = TRIGGERS_DIR,
    app_role: str = APP_ROLE,
) -> Applied:
    """Bring the database up to date as the owner; returns what this run applied.

    Safe to run concurrently and repeatedly: runners queue on an advisory lock, a migration
    already recorded is skipped (its checksum must still match the file), and so is a
    function or trigger file whose text has not changed since it was applied.
    """
    migrations = discover(migrations_dir)
    functions = discover_repeatables(functions_dir, "function")
    triggers = discover_repeatables(triggers_dir, "trigger")
    conn = await asyncpg.connect(owner_url)
    try:
        # Session-level lock: released by unlock, or by the server when the connection ends.
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        await _prepare_roles(conn, app_role)
        async with conn.transaction():
            applied = await _apply(conn, migrations, functions, triggers)
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        return applied
    finally:
        await conn.close()


async def _prepare_roles(conn: asyncpg.Connection, app_role: str) -> None:
    """Create or repair the roles and name them in the settings the grant helpers read."""
    # Read by grant_app(); session-wide for this runner's connection.
    await conn.execute("SELECT set_config('credbatch.app_role', $1, false)", app_role)
    await conn.execute("SET lock_timeout = '60s'")
    await ensure_app_role(conn, app_role)
    # Read by dispatchable_backlog's grant to the monitoring role.
    await conn.execute("SELECT set_config('credbatch.monitor_role', $1, false)", MONITOR_ROLE)
    await ensure_monitor_role(conn)
    for what, role in PROCESS_ROLES:
        # Read by grant_<what>().
        await conn.execute(f"SELECT set_config('credbatch.{what}_role', $1, false)", role)
        await ensure_process_role(conn, role, app_role, what)


async def _apply(
    conn: asyncpg.Connection,
    migrations: list[Migration],
    functions: list[Repeatable],
    triggers: list[Repeatable],
) -> Applied:
    """One run, inside the caller's transaction."""
    await _refuse_other_history(conn, migrations)
    await conn.execute(_BOOKKEEPING)
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
    applied = Applied()

    pending = [m for m in migrations if m.version not in recorded]
    await conn.execute("SET LOCAL check_function_bodies = off")
    applied.functions, later = await _apply_functions(conn, functions, may_wait=bool(pending))

    for m in pending:
        await _run_file(conn, f"migrations/{m.version}_{m.name}.sql", m.sql)
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            m.version,
            m.name,
            m.checksum,
        )
        applied.migrations.append(m.version)
    for r in later:
        await _apply_one(conn, r)
        applied.functions.append(r.name)
    await conn.execute("SET LOCAL check_function_bodies = on")

    applied.triggers = await _apply_repeatables(conn, triggers, "trigger")

    if applied.migrations:
        await _validate_functions(conn, None)  # a table a body reads may have changed
    elif applied.functions:
        await _validate_functions(conn, applied.functions)
    for label, names in (
        ("migrations", applied.migrations),
        ("functions", applied.functions),
        ("triggers", applied.triggers),
    ):
        if names:
            log.info("applied %s: %s", label, ", ".join(names))
    return applied


async def _refuse_other_history(conn: asyncpg.Connection, migrations: list[Migration]) -> None:
    """Refuse a database whose recorded migrations are not the history of these files.

    Before the baseline the runner recorded no function or trigger files, so a database
    with migrations recorded and no ``schema_repeatables`` was migrated by that history.
    """
    if not await conn.fetchval("SELECT to_regclass('public.schema_migrations') IS NOT NULL"):
        return
    rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
    if not rows:
        return
    database = await conn.fetchval("SELECT current_database()")
    remedy = (
        "It can hold development or test data only: drop it and migrate again "
        f"(`dropdb {database}`; `make run` or `python -m credbatch.db.migrate` creates it anew)."
    )
    names = {m.version: m.name for m in migrations}
    if not await conn.fetchval("SELECT to_regclass('public.schema_repeatables') IS NOT NULL"):
        unknown = [r for r in rows if names.get(r["version"]) != r["name"]] or rows
        raise MigrationError(
            f"database {database!r} was migrated before the schema was folded into its "
            f"current baseline (it records migration {unknown[0]['version']}_"
            f"{unknown[0]['name']} and no function or trigger files); the two histories "
            f"cannot be mixed. {remedy}"
        )
    for row in rows:
        name = names.get(row["version"])
        if name is not None and name != row["name"]:
            raise MigrationError(
                f"database {database!r} records migration {row['version']}_{row['name']} "
                f"where the file is {row['version']}_{name}: it holds another migration "
                f"history. {remedy}"
            )


async def _apply_functions(
    conn: asyncpg.Connection, files: list[Repeatable], *, may_wait: bool
) -> tuple[list[str], list[Repeatable]]:
    """Run the changed function files; with ``may_wait``, set aside (and return) those that
    name a type not created yet, to be run after the pending migrations."""
    if not may_wait:
        return await _apply_repeatables(conn, files, "function"), []
    names: list[str] = []
    later: list[Repeatable] = []
    for r in await _changed(conn, files, "function"):
        try:
            async with conn.transaction():
                await _apply_one(conn, r)
        except MigrationError as exc:
            if not isinstance(exc.__cause__, asyncpg.UndefinedObjectError):
                raise
            later.append(r)
        else:
            names.append(r.name)
    return names, later


async def _apply_repeatables(
    conn: asyncpg.Connection, files: list[Repeatable], kind: Kind
) -> list[str]:
    """Run the changed files of ``kind``, each checked to define its object, and record them.

    Returns the names applied, in order.
    """
    names: list[str] = []
    for r in await _changed(conn, files, kind):
        await _apply_one(conn, r)
        names.append(r.name)
    return names


async def _apply_one(conn: asyncpg.Connection, r: Repeatable) -> None:
    await _run_file(conn, r.path, r.sql)
    exists = _FUNCTION_EXISTS if r.kind == "function" else _TRIGGER_EXISTS
    if not await conn.fetchval(exists, r.name):
        raise MigrationError(f"{r.path} defines no {r.kind} named {r.name}")
    await conn.execute(_RECORD_REPEATABLE, r.kind, r.name, r.checksum)


async def _changed(
    conn: asyncpg.Connection, files: list[Repeatable], kind: Kind
) -> list[Repeatable]:
    """The files whose text differs from what was last applied; forgets files now gone."""
    recorded = {
        row["name"]: row["checksum"]
        for row in await conn.fetch(
            "SELECT name, checksum FROM schema_repeatables WHERE kind = $1", kind
        )
    }
    gone = sorted(set(recorded) - {f.name for f in files})
    if gone:
        # Dropping the object is a migration's job (DROP ... IF EXISTS); a file that comes
        # back is then applied again.
        log.warning("%s files gone: %s (drop them in a migration)", kind, ", ".join(gone))
        await conn.execute(
            "DELETE FROM schema_repeatables WHERE kind = $1 AND name = ANY ($2::text[])",
            kind,
            gone,
        )
    return [f for f in files if recorded.get(f.name) != f.checksum]


async def _run_file(conn: asyncpg.Connection, path: str, sql: str) -> None:
    try:
        await conn.execute(sql)
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"{path} failed: {type(exc).__name__}: {exc}") from exc


async def _validate_functions(conn: asyncpg.Connection, names: list[str] | None) -> None:
    """Check the bodies of the functions ``names`` (all when None); fail naming the file."""
    for row in await conn.fetch(_FUNCTIONS_TO_VALIDATE, names):
        try:
            await conn.execute(f"SELECT {row['validator']}($1)", row["oid"])
        except asyncpg.PostgresError as exc:
            raise MigrationError(
                f"functions/{row['name']}.sql: the body does not hold against the schema: "
                f"{type(exc).__name__}: {exc}"
            ) from exc


async def _run() -> Applied:
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
    if not applied:
        print("database is up to date")
    for label, names in (
        ("migrations", applied.migrations),
        ("functions", applied.functions),
        ("triggers", applied.triggers),
    ):
        if names:
            print(f"applied {label}: " + ", ".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
