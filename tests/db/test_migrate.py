"""The migration runner, against the real server."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from credbatch.config import Settings
from credbatch.db.migrate import (
    MigrationError,
    database_name,
    discover,
    ensure_database,
    migrate,
)
from tests.fixtures.database import drop_database, with_database


async def test_rerun_is_a_no_op(db_settings: Settings, owner_pool: asyncpg.Pool) -> None:
    before = await owner_pool.fetch("SELECT * FROM schema_migrations ORDER BY version")
    assert await migrate(db_settings.database_url) == []
    after = await owner_pool.fetch("SELECT * FROM schema_migrations ORDER BY version")
    assert before == after
    on_disk = {m.version: m.checksum for m in discover()}
    assert {r["version"]: r["checksum"] for r in after} == on_disk


def test_database_name() -> None:
    assert database_name("postgresql://u@h:5432/credbatch") == "credbatch"
    assert database_name("postgresql://u@h/?dbname=other") == "other"
    with pytest.raises(MigrationError):
        database_name("postgresql://u@h")


@pytest_asyncio.fixture(loop_scope="session")
async def scratch_url(db_settings: Settings) -> AsyncIterator[str]:
    """A database of its own (not created yet), dropped after the test."""
    url = with_database(db_settings.database_url, f"credbatch_test_{secrets.token_hex(6)}_m")
    try:
        yield url
    finally:
        await drop_database(url)


def write(directory: Path, name: str, sql: str) -> None:
    (directory / name).write_text(sql)


async def tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            "AND relkind = 'r'"
        )
        return {r["relname"] for r in rows}
    finally:
        await conn.close()


async def test_applies_in_order_once(scratch_url: str, tmp_path: Path) -> None:
    assert await ensure_database(scratch_url) is True
    assert await ensure_database(scratch_url) is False
    write(tmp_path, "0002_b.sql", "ALTER TABLE a ADD COLUMN y int;")
    write(tmp_path, "0001_a.sql", "CREATE TABLE a (x int); INSERT INTO a VALUES (1);")
    assert await migrate(scratch_url, directory=tmp_path) == ["0001", "0002"]
    assert await migrate(scratch_url, directory=tmp_path) == []
    write(tmp_path, "0003_c.sql", "CREATE TABLE c (x int);")
    assert await migrate(scratch_url, directory=tmp_path) == ["0003"]
    assert await tables(scratch_url) == {"a", "c", "schema_migrations"}


async def test_concurrent_runners_apply_each_migration_once(
    scratch_url: str, tmp_path: Path
) -> None:
    await ensure_database(scratch_url)
    for n in range(1, 6):
        write(tmp_path, f"000{n}_t{n}.sql", f"CREATE TABLE t{n} (x int); SELECT pg_sleep(0.05);")
    results = await asyncio.gather(*(migrate(scratch_url, directory=tmp_path) for _ in range(3)))
    applied = sorted(v for result in results for v in result)
    assert applied == ["0001", "0002", "0003", "0004", "0005"]


async def test_changed_applied_migration_is_an_error(scratch_url: str, tmp_path: Path) -> None:
    await ensure_database(scratch_url)
    write(tmp_path, "0001_a.sql", "CREATE TABLE a (x int);")
    await migrate(scratch_url, directory=tmp_path)
    write(tmp_path, "0001_a.sql", "CREATE TABLE a (x bigint);")
    write(tmp_path, "0002_b.sql", "CREATE TABLE b (x int);")
    with pytest.raises(MigrationError, match="0001_a was changed"):
        await migrate(scratch_url, directory=tmp_path)
    assert "b" not in await tables(scratch_url)  # nothing applied after the check failed


async def test_failed_migration_rolls_back_alone(scratch_url: str, tmp_path: Path) -> None:
    await ensure_database(scratch_url)
    write(tmp_path, "0001_a.sql", "CREATE TABLE a (x int);")
    write(tmp_path, "0002_b.sql", "CREATE TABLE b (x int); SELECT 1/0;")
    with pytest.raises(asyncpg.DivisionByZeroError):
        await migrate(scratch_url, directory=tmp_path)
    assert await tables(scratch_url) == {"a", "schema_migrations"}
    write(tmp_path, "0002_b.sql", "CREATE TABLE b (x int);")
    assert await migrate(scratch_url, directory=tmp_path) == ["0002"]


def test_malformed_names_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "1_oops.sql", "")
    with pytest.raises(MigrationError, match="NNNN_name"):
        discover(tmp_path)


def test_duplicate_versions_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "0001_a.sql", "")
    write(tmp_path, "0001_b.sql", "")
    with pytest.raises(MigrationError, match="version 0001"):
        discover(tmp_path)


async def test_cli_creates_and_migrates(scratch_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CREDBATCH_DATABASE_URL": scratch_url,
        "CREDBATCH_KEK_FILE": str(tmp_path / "kek"),
    }
    env.pop("CREDBATCH_APP_DATABASE_URL", None)
    command = [sys.executable, "-m", "credbatch.db.migrate"]
    first = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, check=True
    )
    versions = ", ".join(m.version for m in discover())
    assert first.stdout.strip() == f"applied: {versions}"
    second = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, check=True
    )
    assert second.stdout.strip() == "database is up to date"
