"""docs/architecture.md lists exactly what the migrated database holds.

Its tables of stored functions and triggers are compared with the catalog (``pg_proc``,
``pg_trigger``), and its lifecycle diagram with ``record_transitions``: an object or a
transition added, renamed or dropped without the document following fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
_ROW = re.compile(r"^\| `(?P<name>[a-z_][a-z0-9_]*)` \|")
_EDGE = re.compile(r"^\s*(?P<source>[A-Z]+) --> (?P<target>[A-Z]+)\b")


def _section(heading: str) -> list[str]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def _names(heading: str) -> list[str]:
    return [m["name"] for line in _section(heading) if (m := _ROW.match(line))]


def test_the_document_lists_each_object_once() -> None:
    for heading in ("## Stored functions", "## Triggers"):
        names = _names(heading)
        assert names, heading
        assert len(names) == len(set(names)), heading


async def test_stored_functions_are_those_of_the_catalog(owner_pool: asyncpg.Pool) -> None:
    rows = await owner_pool.fetch(
        "SELECT DISTINCT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
    )
    assert set(_names("## Stored functions")) == {r["proname"] for r in rows}


async def test_triggers_are_those_of_the_catalog(owner_pool: asyncpg.Pool) -> None:
    rows = await owner_pool.fetch(
        """
        SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace
        """
    )
    assert set(_names("## Triggers")) == {r["tgname"] for r in rows}


async def test_the_lifecycle_diagram_is_the_transition_table(owner_pool: asyncpg.Pool) -> None:
    edges = {
        (m["source"], m["target"])
        for line in _section("## The life of a record")
        if (m := _EDGE.match(line))
    }
    rows = await owner_pool.fetch("SELECT from_state, to_state FROM record_transitions")
    assert edges == {(r["from_state"], r["to_state"]) for r in rows}
