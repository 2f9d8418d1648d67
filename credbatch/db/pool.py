"""asyncpg connection pools for the application role."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson


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


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    application_name: str = "credbatch",
) -> asyncpg.Pool:
    """Create a pool (for the application role, ``Settings.app_database_url``).

    json/jsonb parameters take any orjson-serialisable value (dicts, lists, str, numbers,
    dates) and come back as Python objects. Tenant scoping is not done here: run queries
    through ``credbatch.tenancy.tenant_transaction``.
    """
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=register_codecs,
        server_settings={"application_name": application_name},
    )
    assert pool is not None
    return pool
