"""Back up the credbatch database, and restore a backup into a fresh database.

    python -m ops.database backup FILE
    python -m ops.database restore FILE --database NEW_NAME

Both connect as the owner, ``CREDBATCH_DATABASE_URL`` (the migration role); ``pg_dump`` and
``pg_restore`` of the server's major version must be on the PATH. Run them from a checkout of
the release that runs in production (``restore`` migrates to the schema of that checkout).

``backup`` writes ``pg_dump --format=custom`` of the database the URL names: every tenant's
data, the schema, the stored functions and the grants to the credbatch roles.

``restore`` never touches an existing database: it refuses a name already taken, creates it
on the same server, creates (or repairs) the credbatch roles there first, since roles live in
the cluster, not in the dump, restores the dump in one transaction (objects owned by the
owner of the URL), then runs the migrations, which apply what the backup predates and re-apply
stored functions whose files changed. It prints the URL to point the processes at; they pick
it up when restarted (docs/operations.md, "Restoring from a backup").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from credbatch.config import APP_ROLE
from credbatch.db.migrate import (
    PROCESS_ROLES,
    MigrationError,
    database_name,
    ensure_app_role,
    ensure_database,
    ensure_monitor_role,
    ensure_process_role,
    migrate,
)


class OpsError(Exception):
    """A step failed; the message says which and what to do."""


def with_database(url: str, name: str) -> str:
    """``url`` with its database replaced by ``name``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise OpsError(f"{name} is not on the PATH (Debian: apt-get install postgresql-client)")
    return path


def _run(args: list[str]) -> None:
    # The PostgreSQL client tools, with a URL and a file name the operator gave.
    done = subprocess.run(args, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        # The tools' own messages name objects and roles, never row data.
        raise OpsError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()}")


def backup(owner_url: str, file: Path) -> None:
    """``pg_dump --format=custom`` of the owner URL's database into ``file``."""
    if file.exists():
        raise OpsError(f"{file} exists; choose a new file name")
    _run([_tool("pg_dump"), "--format=custom", "--file", str(file), "--dbname", owner_url])


async def _prepare(target_url: str) -> None:
    if not await ensure_database(target_url):
        raise OpsError(
            f"database {database_name(target_url)!r} exists already; restore into a new name"
        )
    conn = await asyncpg.connect(target_url)
    try:
        # The roles the dump's grants name; a new cluster has none of them.
        await conn.execute("SELECT set_config('credbatch.app_role', $1, false)", APP_ROLE)
        await ensure_app_role(conn)
        await ensure_monitor_role(conn)
        for what, role in PROCESS_ROLES:
            await ensure_process_role(conn, role, APP_ROLE, what)
    finally:
        await conn.close()


def restore(owner_url: str, file: Path, database: str) -> str:
    """Restore ``file`` into the new database ``database``; returns its owner URL."""
    if not file.is_file():
        raise OpsError(f"{file} is not a file")
    pg_restore = _tool("pg_restore")
    target_url = with_database(owner_url, database)
    asyncio.run(_prepare(target_url))
    _run(
        [
            pg_restore,
            "--exit-on-error",
            "--single-transaction",
            "--no-owner",
            "--dbname",
            target_url,
            str(file),
        ]
    )
    try:
        applied = asyncio.run(migrate(target_url))
    except MigrationError as error:
        raise OpsError(f"restored, but the migrations failed: {error}") from None
    print(f"restored {file} into {database}; migrations: {applied or 'none pending'}")
    return target_url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.database", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    backup_parser = commands.add_parser("backup", help="pg_dump the database into FILE")
    backup_parser.add_argument("file", type=Path)
    restore_parser = commands.add_parser("restore", help="restore FILE into a new database")
    restore_parser.add_argument("file", type=Path)
    restore_parser.add_argument("--database", required=True, help="name of the new database")
    args = parser.parse_args(argv)
    owner_url = os.environ.get("CREDBATCH_DATABASE_URL")
    if not owner_url:
        print("error: set CREDBATCH_DATABASE_URL to the owner's URL", file=sys.stderr)
        return 2
    try:
        if args.command == "backup":
            backup(owner_url, args.file)
            print(f"backed up {database_name(owner_url)} into {args.file}")
        else:
            url = restore(owner_url, args.file, args.database)
            print("point CREDBATCH_DATABASE_URL (and every CREDBATCH_*_DATABASE_URL you set) at")
            print(f"  {_without_password(url)}")
            print("then restart every process; the migrate Job needs no re-run")
    except (OpsError, OSError, asyncpg.PostgresError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _without_password(url: str) -> str:
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, credentials = head.partition("//")
    user = credentials.split(":", 1)[0]
    return f"{scheme}//{user}:***@{tail}"


if __name__ == "__main__":
    sys.exit(main())
