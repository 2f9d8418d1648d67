"""The migration runner, against the real server: a scratch database per test."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from credbatch.config import Settings
from credbatch.db.migrate import (
    FUNCTIONS_DIR,
    TRIGGERS_DIR,
    Applied,
    MigrationError,
    database_name,
    discover,
    discover_repeatables,
    ensure_database,
    migrate,
)
from tests.fixtures.database import drop_database, with_database


async def test_rerun_is_a_no_op(db_settings: Settings, owner_pool: asyncpg.Pool) -> None:
    query = "SELECT * FROM {} ORDER BY 1, 2"
    before = [
        await owner_pool.fetch(query.format(t)) for t in ("schema_migrations", "schema_repeatables")
    ]
    assert await migrate(db_settings.database_url) == Applied()
    after = [
        await owner_pool.fetch(query.format(t)) for t in ("schema_migrations", "schema_repeatables")
    ]
    assert before == after
    migrations, repeatables = after
    assert {r["version"]: r["checksum"] for r in migrations} == {
        m.version: m.checksum for m in discover()
    }
    on_disk = discover_repeatables(FUNCTIONS_DIR, "function") + discover_repeatables(
        TRIGGERS_DIR, "trigger"
    )
    assert {(r["kind"], r["name"]): r["checksum"] for r in repeatables} == {
        (f.kind, f.name): f.checksum for f in on_disk
    }


def test_database_name() -> None:
    assert database_name("postgresql://u@h:5432/credbatch") == "credbatch"
    assert database_name("postgresql://u@h/?dbname=other") == "other"
    with pytest.raises(MigrationError):
        database_name("postgresql://u@h")


@pytest_asyncio.fixture(loop_scope="session")
async def scratch_url(db_settings: Settings) -> AsyncIterator[str]:
    """A database of its own (created), dropped after the test."""
    url = with_database(db_settings.database_url, f"credbatch_test_{secrets.token_hex(6)}_m")
    assert await ensure_database(url) is True
    try:
        yield url
    finally:
        await drop_database(url)


@dataclass(frozen=True)
class Tree:
    """A scratch layout: migrations/, functions/ and triggers/ under one directory."""

    root: Path

    def __post_init__(self) -> None:
        for folder in ("migrations", "functions", "triggers"):
            (self.root / folder).mkdir(exist_ok=True)

    def write(self, path: str, sql: str) -> None:
        (self.root / path).write_text(sql)

    def remove(self, path: str) -> None:
        (self.root / path).unlink()

    async def migrate(self, url: str) -> Applied:
        return await migrate(
            url,
            migrations_dir=self.root / "migrations",
            functions_dir=self.root / "functions",
            triggers_dir=self.root / "triggers",
        )


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree(tmp_path)


async def fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(query)
        return rows
    finally:
        await conn.close()


async def tables(url: str) -> set[str]:
    rows = await fetch(
        url,
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
        "AND relkind = 'r'",
    )
    return {r["relname"] for r in rows}


async def functions(url: str) -> set[str]:
    rows = await fetch(
        url, "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
    )
    return {r["proname"] for r in rows}


async def repeatables(url: str) -> dict[tuple[str, str], object]:
    """(kind, name) -> applied_at of every function and trigger file recorded."""
    rows = await fetch(url, "SELECT kind, name, applied_at FROM schema_repeatables")
    return {(r["kind"], r["name"]): r["applied_at"] for r in rows}


def function(name: str, result: str = "1") -> str:
    return f"CREATE OR REPLACE FUNCTION {name}() RETURNS int LANGUAGE sql AS $$ SELECT {result} $$;"


BUMP = """
CREATE OR REPLACE FUNCTION bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.x := NEW.x + 1;
  RETURN NEW;
END
$$;
"""
BUMP_TRIGGER = """
CREATE OR REPLACE TRIGGER a_bump BEFORE INSERT ON a FOR EACH ROW EXECUTE FUNCTION bump();
"""


async def test_applies_in_order_once(scratch_url: str, tree: Tree) -> None:
    assert await ensure_database(scratch_url) is False
    tree.write("migrations/0002_b.sql", "ALTER TABLE a ADD COLUMN y int;")
    tree.write("migrations/0001_a.sql", "CREATE TABLE a (x int); INSERT INTO a VALUES (1);")
    assert (await tree.migrate(scratch_url)).migrations == ["0001", "0002"]
    assert not await tree.migrate(scratch_url)
    tree.write("migrations/0003_c.sql", "CREATE TABLE c (x int);")
    assert (await tree.migrate(scratch_url)).migrations == ["0003"]
    assert await tables(scratch_url) == {"a", "c", "schema_migrations", "schema_repeatables"}


async def test_concurrent_runners_apply_each_file_once(scratch_url: str, tree: Tree) -> None:
    for n in range(1, 6):
        tree.write(
            f"migrations/000{n}_t{n}.sql", f"CREATE TABLE t{n} (x int); SELECT pg_sleep(0.05);"
        )
    tree.write("functions/f.sql", function("f"))
    results = await asyncio.gather(*(tree.migrate(scratch_url) for _ in range(3)))
    assert sorted(v for r in results for v in r.migrations) == [
        "0001",
        "0002",
        "0003",
        "0004",
        "0005",
    ]
    assert [f for r in results for f in r.functions] == ["f"]


async def test_repeatables_are_applied_once_and_again_when_changed(
    scratch_url: str, tree: Tree
) -> None:
    tree.write("migrations/0001_a.sql", "CREATE TABLE a (x int);")
    tree.write("functions/bump.sql", BUMP)
    tree.write("functions/one.sql", function("one"))
    tree.write("triggers/a_bump.sql", BUMP_TRIGGER)
    first = await tree.migrate(scratch_url)
    assert first == Applied(["0001"], ["bump", "one"], ["a_bump"])
    recorded = await repeatables(scratch_url)
    assert set(recorded) == {("function", "bump"), ("function", "one"), ("trigger", "a_bump")}

    assert await tree.migrate(scratch_url) == Applied()
    assert await repeatables(scratch_url) == recorded

    # Only the changed file is applied again, and its new body is the one that runs.
    tree.write("functions/one.sql", function("one", "2"))
    assert await tree.migrate(scratch_url) == Applied(functions=["one"])
    again = await repeatables(scratch_url)
    assert again[("function", "one")] != recorded[("function", "one")]
    assert {k: v for k, v in again.items() if k != ("function", "one")} == {
        k: v for k, v in recorded.items() if k != ("function", "one")
    }
    assert (await fetch(scratch_url, "SELECT one() AS n"))[0]["n"] == 2

    tree.write(
        "triggers/a_bump.sql", BUMP_TRIGGER.replace("BEFORE INSERT", "BEFORE INSERT OR UPDATE")
    )
    assert await tree.migrate(scratch_url) == Applied(triggers=["a_bump"])
    rows = await fetch(scratch_url, "INSERT INTO a VALUES (1) RETURNING x")
    assert rows[0]["x"] == 2


async def test_a_changed_function_and_a_pending_migration_apply_in_one_run(
    scratch_url: str, tree: Tree
) -> None:
    tree.write("migrations/0001_a.sql", "CREATE TABLE a (x int); INSERT INTO a VALUES (41);")
    tree.write("functions/total.sql", function("total", "(SELECT sum(x)::int FROM a)"))
    await tree.migrate(scratch_url)
    # The new body reads a column only the pending migration creates: functions are applied
    # before the migrations with their bodies unchecked, and checked once the column exists.
    tree.write("migrations/0002_y.sql", "ALTER TABLE a ADD COLUMN y int NOT NULL DEFAULT 1;")
    tree.write("functions/total.sql", function("total", "(SELECT sum(x + y)::int FROM a)"))
    assert await tree.migrate(scratch_url) == Applied(["0002"], ["total"])
    assert (await fetch(scratch_url, "SELECT total() AS n"))[0]["n"] == 42


async def test_a_function_naming_a_type_of_a_pending_migration_is_applied_after_it(
    scratch_url: str, tree: Tree
) -> None:
    tree.write("functions/answer.sql", function("answer", "41"))
    tree.write("migrations/0001_a.sql", "CREATE TABLE a (x int DEFAULT answer());")
    tree.write("migrations/0002_pair.sql", "CREATE TYPE pair AS (l int, r int);")
    tree.write(
        "functions/pair_sum.sql",
        "CREATE OR REPLACE FUNCTION pair_sum(p pair) RETURNS int LANGUAGE sql"
        " AS $$ SELECT p.l + p.r $$;",
    )
    applied = await tree.migrate(scratch_url)
    assert applied == Applied(["0001", "0002"], ["answer", "pair_sum"])
    rows = await fetch(scratch_url, "SELECT pair_sum(ROW(40, 2)::pair) AS n")
    assert rows[0]["n"] == 42
    assert await tree.migrate(scratch_url) == Applied()


async def test_migrations_call_functions_and_triggers_fire_on_their_tables(
    scratch_url: str, tree: Tree
) -> None:
    # What the baseline relies on: a migration's policy or default calls a function file's
    # function, and a trigger file names a table a migration of the same run creates.
    tree.write("functions/answer.sql", function("answer", "41"))
    tree.write("functions/bump.sql", BUMP)
    tree.write("migrations/0001_a.sql", "CREATE TABLE a (x int DEFAULT answer());")
    tree.write("triggers/a_bump.sql", BUMP_TRIGGER)
    await tree.migrate(scratch_url)
    rows = await fetch(scratch_url, "INSERT INTO a DEFAULT VALUES RETURNING x")
    assert rows[0]["x"] == 42


@pytest.mark.parametrize(
    ("path", "sql", "error"),
    [
        # Fails as it is applied.
        (
            "functions/bad.sql",
            "CREATE OR REPLACE FUNCTION bad() RETURNS nosuchtype LANGUAGE sql AS $$ SELECT 1 $$;",
            "functions/bad.sql failed",
        ),
        # Applied unchecked, then refused by the check of bodies after the migrations.
        ("functions/bad.sql", function("bad", "x FROM nosuchtable"), "functions/bad.sql: the body"),
        (
            "functions/bad.sql",
            "CREATE OR REPLACE FUNCTION bad() RETURNS int LANGUAGE plpgsql "
            "AS $$ BEGIN RETURN 1 $$;",
            "functions/bad.sql: the body",
        ),
        ("functions/bad.sql", function("notbad"), "functions/bad.sql defines no function"),
        (
            "triggers/a_bad.sql",
            "CREATE OR REPLACE TRIGGER a_bad BEFORE INSERT ON a "
            "FOR EACH ROW EXECUTE FUNCTION nosuchfunction();",
            "triggers/a_bad.sql failed",
        ),
        (
            "migrations/0002_bad.sql",
            "CREATE TABLE b (x int); SELECT 1/0;",
            "migrations/0002_bad.sql failed: DivisionByZeroError",
        ),
    ],
)
async def test_a_failing_file_fails_the_run_naming_it_and_applies_nothing(
    scratch_url: str, tree: Tree, path: str, sql: str, error: str
) -> None:
    tree.write("migrations/0001_a.sql", "CREATE TABLE a (x int);")
    tree.write("functions/good.sql", function("good"))
    tree.write("triggers/a_bump.sql", BUMP_TRIGGER)
    tree.write("functions/bump.sql", BUMP)
    tree.write(path, sql)
    with pytest.raises(MigrationError, match=re.escape(error)):
        await tree.migrate(scratch_url)
    assert await tables(scratch_url) == set()
    assert await functions(scratch_url) == set()

    tree.remove(path)
    assert (await tree.migrate(scratch_url)).migrations == ["0001"]
    assert await functions(scratch_url) == {"good", "bump"}


async def test_changed_applied_migration_is_an_error(scratch_url: str, tree: Tree) -> None:
    tree.write("migrations/0001_a.sql", "CREATE TABLE a (x int);")
    await tree.migrate(scratch_url)
    tree.write("migrations/0001_a.sql", "CREATE TABLE a (x bigint);")
    tree.write("migrations/0002_b.sql", "CREATE TABLE b (x int);")
    tree.write("functions/f.sql", function("f"))
    with pytest.raises(MigrationError, match="0001_a was changed"):
        await tree.migrate(scratch_url)
    assert "b" not in await tables(scratch_url)  # nothing applied after the check failed
    assert "f" not in await functions(scratch_url)


async def test_a_gone_file_is_forgotten_and_applied_again_when_back(
    scratch_url: str, tree: Tree
) -> None:
    tree.write("functions/f.sql", function("f"))
    await tree.migrate(scratch_url)
    tree.remove("functions/f.sql")
    tree.write("migrations/0001_drop_f.sql", "DROP FUNCTION IF EXISTS f();")
    assert await tree.migrate(scratch_url) == Applied(["0001"])
    assert await repeatables(scratch_url) == {}
    tree.write("functions/f.sql", function("f"))
    assert await tree.migrate(scratch_url) == Applied(functions=["f"])
    assert await functions(scratch_url) == {"f"}


OLD_RUNNER_TABLE = """
CREATE TABLE schema_migrations (
  version    text        PRIMARY KEY,
  name       text        NOT NULL,
  checksum   text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
"""


@pytest.mark.parametrize(
    ("version", "name"),
    [
        ("0500", "fair_dispatch"),  # a version the baseline does not have
        ("0001", "tenancy"),  # the same version and name, another text
    ],
)
async def test_a_database_migrated_before_the_baseline_is_refused(
    scratch_url: str, tree: Tree, version: str, name: str
) -> None:
    conn = await asyncpg.connect(scratch_url)
    try:
        await conn.execute(OLD_RUNNER_TABLE)
        await conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, 'old')",
            version,
            name,
        )
    finally:
        await conn.close()
    tree.write("migrations/0001_tenancy.sql", "CREATE TABLE a (x int);")
    tree.write("functions/f.sql", function("f"))
    database = database_name(scratch_url)
    with pytest.raises(MigrationError) as refused:
        await tree.migrate(scratch_url)
    message = str(refused.value)
    assert f"{version}_{name}" in message
    assert "before the schema was folded" in message
    assert f"dropdb {database}" in message
    assert await tables(scratch_url) == {"schema_migrations"}
    assert await functions(scratch_url) == set()


async def test_a_migration_recorded_under_another_name_is_refused(
    scratch_url: str, tree: Tree
) -> None:
    tree.write("migrations/0001_a.sql", "CREATE TABLE a (x int);")
    await tree.migrate(scratch_url)
    tree.remove("migrations/0001_a.sql")
    tree.write("migrations/0001_other.sql", "CREATE TABLE a (x int);")
    with pytest.raises(
        MigrationError, match="records migration 0001_a where the file is 0001_other"
    ):
        await tree.migrate(scratch_url)


def test_malformed_names_are_refused(tree: Tree) -> None:
    tree.write("migrations/1_oops.sql", "")
    with pytest.raises(MigrationError, match="NNNN_name"):
        discover(tree.root / "migrations")
    tree.write("functions/Oops-1.sql", "")
    with pytest.raises(MigrationError, match=re.escape("functions/Oops-1.sql")):
        discover_repeatables(tree.root / "functions", "function")


def test_duplicate_versions_are_refused(tree: Tree) -> None:
    tree.write("migrations/0001_a.sql", "")
    tree.write("migrations/0001_b.sql", "")
    with pytest.raises(MigrationError, match="version 0001"):
        discover(tree.root / "migrations")


def test_grant_helpers_are_applied_first(tree: Tree) -> None:
    for name in ("alpha", "grant_zeta", "beta", "grant_app"):
        tree.write(f"functions/{name}.sql", "")
    tree.write("functions/README.md", "not read")
    found = discover_repeatables(tree.root / "functions", "function")
    assert [f.name for f in found] == ["grant_app", "grant_zeta", "alpha", "beta"]
    assert discover_repeatables(tree.root / "nowhere", "trigger") == []


async def test_cli_creates_and_migrates(db_settings: Settings, tmp_path: Path) -> None:
    url = with_database(db_settings.database_url, f"credbatch_test_{secrets.token_hex(6)}_c")
    env = {
        **os.environ,
        "CREDBATCH_DATABASE_URL": url,
        "CREDBATCH_KEK_FILE": str(tmp_path / "kek"),
    }
    env.pop("CREDBATCH_APP_DATABASE_URL", None)
    command = [sys.executable, "-m", "credbatch.db.migrate"]
    try:
        first = await asyncio.to_thread(
            subprocess.run, command, env=env, capture_output=True, text=True, check=True
        )
        applied = {
            "migrations": [m.version for m in discover()],
            "functions": [f.name for f in discover_repeatables(FUNCTIONS_DIR, "function")],
            "triggers": [t.name for t in discover_repeatables(TRIGGERS_DIR, "trigger")],
        }
        printed = {
            label: names.split(", ")
            for label, names in (
                line.removeprefix("applied ").split(": ", 1) for line in first.stdout.splitlines()
            )
        }
        assert list(printed) == list(applied)
        assert printed["migrations"] == applied["migrations"]
        assert printed["triggers"] == applied["triggers"]
        # In file order, except those naming a type of the migrations: after them.
        assert sorted(printed["functions"]) == sorted(applied["functions"])
        second = await asyncio.to_thread(
            subprocess.run, command, env=env, capture_output=True, text=True, check=True
        )
        assert second.stdout.strip() == "database is up to date"
    finally:
        await drop_database(url)
