"""asyncpg connection pools, sized by ``Settings.pools`` (credbatch/db/pool_sizes.py)."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from credbatch.db.pool_sizes import DEFAULT_STATEMENT_CACHE_SIZE


def _encode_jsonb(value: Any) -> bytes:
    # jsonb binary format: a version byte (1) followed by the JSON text.
    return b"\x01" + orjson.dumps(value)


def _decode_jsonb(data: bytes) -> Any:
    if data[:1] != b"\x01":
        raise ValueError(f"unsupported jsonb binary format version {data[:1]!r}")
    return orjson.loads(data[1:])


async def register_codecs(conn: asyncpg.Connection) -> None:
    """Make json/jsonb values Python objects on ``conn``, (de)serialised with orjson."""
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=_encode_jsonb,
        decoder=_decode_jsonb,
        format="binary",
    )
    await conn.set_type_codec(
        "json", schema="pg_catalog", encoder=orjson.dumps, decoder=orjson.loads, format="binary"
    )


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg is untyped
    """A connection that goes back to its pool without asyncpg's reset query.

    The default query (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``) clears
    session state, and credbatch keeps none: tenant settings are transaction-local, locks are
    transaction locks, nothing listens (tests/db/test_session_state.py reads the code for
    it). Behind PgBouncer in transaction mode the query would run on whichever server
    connection is free, and its ``RESET ALL`` would put back that connection's own
    ``application_name`` while PgBouncer believes it still holds the client's, so
    pg_stat_activity would no longer say which process a connection serves. An open
    transaction is still rolled back on release (asyncpg does that before the query).
    """

    def get_reset_query(self) -> str:
        return ""


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    statement_cache_size: int = DEFAULT_STATEMENT_CACHE_SIZE,
    application_name: str = "credbatch",
) -> asyncpg.Pool:
    """Create a pool of connections to ``dsn`` (a role's URL, direct or through PgBouncer).

    json/jsonb parameters take any orjson-serialisable value (dicts, lists, str, numbers,
    dates) and come back as Python objects. Tenant scoping is not done here: run queries
    through ``credbatch.tenancy.tenant_transaction``. ``statement_cache_size`` 0 is for a
    PgBouncer in transaction mode that cannot keep prepared statements (before 1.21).
    """
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        statement_cache_size=statement_cache_size,
        connection_class=PooledConnection,
        init=register_codecs,
        server_settings={"application_name": application_name},
    )
    assert pool is not None
    return pool
