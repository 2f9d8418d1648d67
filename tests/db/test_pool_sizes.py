"""Pool sizes from the environment: defaults, overrides, and errors naming the variable."""

from __future__ import annotations

import dataclasses
from typing import get_args

import asyncpg
import pytest

from credbatch.config import ConfigError, Settings, load_settings
from credbatch.db.pool import create_pool
from credbatch.db.pool_sizes import (
    POOL_VARIABLES,
    PoolName,
    PoolSizes,
    default_worker_pool,
    pool_sizes,
)


def test_defaults_are_the_documented_ones() -> None:
    sizes = load_settings({}).pools
    assert sizes == PoolSizes()
    assert sizes.args("public") == {"min_size": 1, "max_size": 8, "statement_cache_size": 100}
    assert sizes.args("worker")["max_size"] == 10


def test_every_pool_has_a_variable_and_a_field() -> None:
    fields = {f.name for f in dataclasses.fields(PoolSizes)} - {"min_size", "statement_cache_size"}
    assert set(get_args(PoolName)) == set(POOL_VARIABLES) == fields


@pytest.mark.parametrize("pool", sorted(POOL_VARIABLES))
def test_each_pool_has_its_own_variable(pool: str) -> None:
    sizes = pool_sizes({POOL_VARIABLES[pool]: "7"}, 100)  # type: ignore[index]
    assert sizes.args(pool)["max_size"] == 7  # type: ignore[arg-type]
    changed = {
        name for name in POOL_VARIABLES if getattr(sizes, name) != getattr(PoolSizes(), name)
    }
    assert changed == {pool}


def test_the_worker_pool_follows_the_prefetch_unless_set() -> None:
    assert default_worker_pool(10) == 4
    assert default_worker_pool(300) == 30
    assert load_settings({"CREDBATCH_WORKER_PREFETCH": "300"}).pools.worker == 30
    env = {"CREDBATCH_WORKER_PREFETCH": "300", "CREDBATCH_WORKER_POOL_MAX": "6"}
    assert load_settings(env).pools.worker == 6


def test_the_minimum_never_exceeds_a_pools_maximum() -> None:
    sizes = pool_sizes({"CREDBATCH_DB_POOL_MIN": "3"}, 100)
    assert sizes.args("templates")["min_size"] == 3
    assert sizes.args("relay_dead_letters") == {
        "min_size": 1,
        "max_size": 1,
        "statement_cache_size": 100,
    }
    assert pool_sizes({"CREDBATCH_DB_POOL_MIN": "0"}, 100).args("signer")["min_size"] == 0


def test_the_statement_cache_can_be_turned_off() -> None:
    sizes = pool_sizes({"CREDBATCH_DB_STATEMENT_CACHE_SIZE": "0"}, 100)
    assert {sizes.args(pool)["statement_cache_size"] for pool in POOL_VARIABLES} == {0}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CREDBATCH_UPLOADS_POOL_MAX": "0"}, "CREDBATCH_UPLOADS_POOL_MAX must be at least 1"),
        ({"CREDBATCH_WORKER_POOL_MAX": "1"}, "CREDBATCH_WORKER_POOL_MAX must be at least 2"),
        ({"CREDBATCH_RELAY_POOL_MAX": "five"}, "CREDBATCH_RELAY_POOL_MAX must be an integer"),
        ({"CREDBATCH_DB_POOL_MIN": "-1"}, "CREDBATCH_DB_POOL_MIN must be at least 0"),
        (
            {"CREDBATCH_DB_STATEMENT_CACHE_SIZE": "-5"},
            "CREDBATCH_DB_STATEMENT_CACHE_SIZE must be at least 0",
        ),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


async def test_a_pool_is_opened_with_its_sizes(db_settings: Settings) -> None:
    sizes = pool_sizes({"CREDBATCH_SIGNER_POOL_MAX": "3", "CREDBATCH_DB_POOL_MIN": "2"}, 100)
    args = sizes.args("signer")
    pool = await create_pool(
        db_settings.app_database_url,
        min_size=args["min_size"],
        max_size=args["max_size"],
        statement_cache_size=db_settings.pools.statement_cache_size,
    )
    try:
        assert (pool.get_min_size(), pool.get_max_size()) == (2, 3)
        async with pool.acquire() as conn:
            assert isinstance(conn, asyncpg.Connection)
            # Released without asyncpg's RESET ALL (credbatch.db.pool.PooledConnection).
            assert conn.get_reset_query() == ""
    finally:
        await pool.close()
