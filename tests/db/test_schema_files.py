"""The layout of credbatch/db: tables in migrations, one file per function and per trigger.

The tree tests read the files only; the catalog tests compare them with the session's
migrated database.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import asyncpg
import pytest

from credbatch.db.migrate import FUNCTIONS_DIR, MIGRATIONS_DIR, TRIGGERS_DIR

DB_DIR = MIGRATIONS_DIR.parent
# Functions with more than one signature, each file saying why.
# Functions created under more than one signature (none: shorter calls use defaults).
OVERLOADS: dict[str, int] = {}

_IDENT = r"(?:public\.)?\"?([a-z_][a-z0-9_]*)\"?"
CREATE_FUNCTION = re.compile(
    r"\bCREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+" + _IDENT + r"\s*\(", re.IGNORECASE
)
CREATE_TRIGGER = re.compile(
    r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?TRIGGER\s+" + _IDENT, re.IGNORECASE
)
COMMENT_FUNCTION = re.compile(r"\bCOMMENT\s+ON\s+FUNCTION\s+" + _IDENT + r"\s*\(", re.IGNORECASE)
# What only a function or trigger file may do (a migration drops a removed function with
# DROP FUNCTION IF EXISTS, as the functions README says).
CODE_IN_MIGRATION = re.compile(
    r"\b(CREATE\s+OR\s+REPLACE|CREATE\s+(?:CONSTRAINT\s+)?TRIGGER|CREATE\s+FUNCTION|"
    r"CREATE\s+PROCEDURE|ALTER\s+FUNCTION|DROP\s+FUNCTION(?!\s+IF\s+EXISTS)|DROP\s+TRIGGER)\b",
    re.IGNORECASE,
)


def code(text: str) -> str:
    """``text`` without ``--`` comments, so prose about a function is not taken for SQL."""
    return re.sub(r"--[^\n]*", "", text)


def sql_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.sql"))


def function_files() -> list[Path]:
    return sql_files(FUNCTIONS_DIR)


def trigger_files() -> list[Path]:
    return sql_files(TRIGGERS_DIR)


@pytest.mark.parametrize("directory", [FUNCTIONS_DIR, TRIGGERS_DIR])
def test_folders_hold_sql_files_and_a_readme(directory: Path) -> None:
    others = {p.name for p in directory.iterdir() if p.suffix != ".sql"}
    assert others == {"README.md"}


@pytest.mark.parametrize("path", function_files(), ids=lambda p: p.name)
def test_a_function_file_defines_the_function_it_is_named_after(path: Path) -> None:
    text = path.read_text()
    body = code(text)
    created = CREATE_FUNCTION.findall(body)
    assert set(created) == {path.stem}, created
    assert len(created) == OVERLOADS.get(path.stem, 1)
    assert len(re.findall(r"\bCREATE\s+OR\s+REPLACE\s+FUNCTION\b", body, re.I)) == len(created)
    assert Counter(COMMENT_FUNCTION.findall(body)) == Counter(created)
    assert not CREATE_TRIGGER.search(body), "triggers live in credbatch/db/triggers"
    assert text.startswith("--"), "a function file begins with why the function exists"
    if len(created) > 1:
        assert "overload" in text.lower(), "a file with overloads says why"


@pytest.mark.parametrize("path", trigger_files(), ids=lambda p: p.name)
def test_a_trigger_file_defines_the_trigger_it_is_named_after(path: Path) -> None:
    text = path.read_text()
    body = code(text)
    assert CREATE_TRIGGER.findall(body) == [path.stem]
    assert re.search(r"\bCREATE\s+OR\s+REPLACE\s+TRIGGER\b", body, re.I)
    assert not CREATE_FUNCTION.search(body), "trigger functions live in credbatch/db/functions"
    assert text.startswith("--"), "a trigger file begins with why the trigger exists"


@pytest.mark.parametrize("path", sql_files(MIGRATIONS_DIR), ids=lambda p: p.name)
def test_migrations_create_no_function_or_trigger(path: Path) -> None:
    found = CODE_IN_MIGRATION.findall(code(path.read_text()))
    assert found == [], "functions and triggers live in their own files"


def test_each_function_is_created_once_in_the_tree() -> None:
    created: Counter[str] = Counter()
    where: dict[str, set[str]] = {}
    for path in sorted(DB_DIR.rglob("*.sql")):
        for name in CREATE_FUNCTION.findall(code(path.read_text())):
            created[name] += 1
            where.setdefault(name, set()).add(str(path.relative_to(DB_DIR)))
    assert {n: c for n, c in created.items() if c != OVERLOADS.get(n, 1)} == {}
    assert {n: w for n, w in where.items() if w != {f"functions/{n}.sql"}} == {}


async def test_the_database_holds_exactly_the_function_files(owner_pool: asyncpg.Pool) -> None:
    rows = await owner_pool.fetch(
        "SELECT proname, count(*) AS n FROM pg_proc "
        "WHERE pronamespace = 'public'::regnamespace GROUP BY proname"
    )
    in_database = {r["proname"]: r["n"] for r in rows}
    in_files = {p.stem: OVERLOADS.get(p.stem, 1) for p in function_files()}
    assert in_database == in_files


async def test_the_database_holds_exactly_the_trigger_files(owner_pool: asyncpg.Pool) -> None:
    rows = await owner_pool.fetch(
        "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal"
    )
    names = [r["tgname"] for r in rows]
    assert sorted(names) == sorted(p.stem for p in trigger_files())
