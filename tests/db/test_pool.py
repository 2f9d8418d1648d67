"""The application pool's codecs."""

from __future__ import annotations

import asyncpg


async def test_jsonb_and_json_round_trip(app_pool: asyncpg.Pool) -> None:
    value = {"name": "Zoë", "n": 3, "x": 1.5, "ok": True, "tags": ["a", None], "nested": {}}
    assert await app_pool.fetchval("SELECT $1::jsonb", value) == value
    assert await app_pool.fetchval("SELECT $1::json", value) == value
    assert await app_pool.fetchval('SELECT \'[1, {"a": "b"}]\'::jsonb') == [1, {"a": "b"}]
    assert await app_pool.fetchval("SELECT $1::jsonb ->> 'name'", value) == "Zoë"
    assert await app_pool.fetchval("SELECT 'null'::jsonb") is None


async def test_application_name(app_pool: asyncpg.Pool) -> None:
    assert await app_pool.fetchval("SELECT current_setting('application_name')") == "credbatch"
