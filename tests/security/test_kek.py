"""Attack and operations: weak KEKs are refused in production; keys record their KEK's id;
`credbatch keys rewrap` moves every key to a new KEK, after which workers with the new KEK
sign and workers with the old one refuse, naming both ids.

The rewrap runs the real CLI in a subprocess against a database of its own (it re-wraps
every tenant's keys, and other tests' keys are under other KEKs).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from credbatch.config import ConfigError, Settings, load_settings
from credbatch.db.migrate import ensure_database, migrate
from credbatch.db.pool import create_pool
from credbatch.signing.kek import KeyUnwrapError, kek_id
from credbatch.signing.keys import KeyRing
from credbatch.signing.sd_jwt import issue, verify
from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.database import drop_database, with_database
from tests.fixtures.jwks import published_jwks

CLI = Path(sys.executable).with_name("credbatch")


def _production(kek: bytes) -> Settings:
    return load_settings(
        {
            "CREDBATCH_MODE": "production",
            "CREDBATCH_JWT_SECRET": "s" * 40,
            "CREDBATCH_KEK": base64.b64encode(kek).decode(),
        }
    )


@pytest.mark.parametrize(
    "weak",
    [
        bytes(32),
        b"\xab" * 32,
        bytes(range(8)) * 4,  # a short pattern repeated
        bytes(range(0, 150, 10)) * 2 + b"\x00\x0a",  # 15 distinct values
        b"0123456789abcdef" * 2,  # hex digits typed as the key
        b"correct horse battery staple 42!",  # a pass phrase: printable text
    ],
)
def test_production_refuses_a_weak_kek(weak: bytes) -> None:
    assert len(weak) == 32
    with pytest.raises(ConfigError, match="CREDBATCH_KEK is refused in production"):
        _production(weak)


def test_production_accepts_random_keks_and_development_stays_lenient() -> None:
    for _ in range(200):
        assert _production(os.urandom(32)).kek_bytes()
    dev = load_settings({"CREDBATCH_KEK": base64.b64encode(bytes(32)).decode()})
    assert dev.kek_bytes() == bytes(32)


@pytest_asyncio.fixture(loop_scope="session")
async def own_database(db_settings: Settings) -> AsyncIterator[Settings]:
    name = f"credbatch_kek_{secrets.token_hex(6)}"
    owner_url = with_database(db_settings.database_url, name)
    await ensure_database(owner_url)
    try:
        await migrate(owner_url)
        yield db_settings.with_overrides(
            database_url=owner_url,
            app_database_url=with_database(db_settings.app_database_url, name),
        )
    finally:
        await drop_database(owner_url)


async def _rewrap(settings: Settings, old: bytes, new_file: Path) -> tuple[int, str]:
    env = {
        **os.environ,
        "CREDBATCH_DATABASE_URL": settings.database_url,
        "CREDBATCH_KEK": base64.b64encode(old).decode(),
    }
    process = await asyncio.create_subprocess_exec(
        str(CLI),
        "keys",
        "rewrap",
        "--new-kek-file",
        str(new_file),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def _signs(pool: asyncpg.Pool, kek: bytes, tenant: uuid.UUID) -> bool:
    key = await KeyRing(pool, kek).active_key(tenant)
    token = issue(key=key.private_key, kid=key.kid, claims={}, disclosable={"a": 1})
    async with tenant_transaction(pool, service_scope(tenant), readonly=True) as conn:
        jwks = await published_jwks(conn, tenant)
    return verify(token, jwks).disclosed == {"a": 1}


async def _audited(owner: asyncpg.Connection) -> set[tuple[object, ...]]:
    rows = await owner.fetch(
        "SELECT tenant_id, actor, actor_kind, action, resource, outcome FROM audit_events"
    )
    return {tuple(row.values()) for row in rows}


async def test_rewrap_moves_every_key_to_the_new_kek(
    own_database: Settings, tmp_path: Path
) -> None:
    old, new, stranger = os.urandom(32), os.urandom(32), os.urandom(32)
    tenants = [uuid.uuid4(), uuid.uuid4()]
    owner = await asyncpg.connect(own_database.database_url)
    pool = await create_pool(own_database.app_database_url, max_size=2)
    try:
        for tenant in tenants:
            assert await _signs(pool, old, tenant)
        stored = await owner.fetch("SELECT kek_id, private_key_enc FROM signing_keys")
        assert {row["kek_id"] for row in stored} == {kek_id(old)}
        assert all(old.hex()[:16] not in row["kek_id"] for row in stored)

        new_file = tmp_path / "new.kek"
        new_file.write_text(base64.b64encode(new).decode() + "\n")

        # A key the old KEK cannot open aborts the whole rewrap: nothing moves.
        foreign = uuid.uuid4()
        await KeyRing(pool, stranger).active_key(foreign)
        before = await owner.fetch("SELECT tenant_id, nonce, kek_id FROM signing_keys")
        code, output = await _rewrap(own_database, old, new_file)
        assert code != 0 and "does not decrypt" in output
        assert await owner.fetch("SELECT tenant_id, nonce, kek_id FROM signing_keys") == before
        assert await owner.fetchval("SELECT count(*) FROM audit_events") == 0
        await owner.execute("DELETE FROM signing_keys WHERE tenant_id = $1", foreign)

        code, output = await _rewrap(own_database, old, new_file)
        assert code == 0, output
        assert f"rewrapped 2 signing keys under KEK {kek_id(new)}" in output
        rows = await owner.fetch("SELECT kek_id FROM signing_keys")
        assert {row["kek_id"] for row in rows} == {kek_id(new)}
        # Each tenant's audit trail says its keys moved, by the command, to which KEK.
        assert await _audited(owner) == {
            (tenant, "cli:keys-rewrap", "SYSTEM", "signing_keys.rewrap", "signingKeys", "OK")
            for tenant in tenants
        }
        details = await owner.fetch("SELECT details::text FROM audit_events")
        assert [json.loads(d["details"]) for d in details] == [
            {"rewrapped": 1, "kek_id": kek_id(new)}
        ] * 2

        # Workers started with the new KEK sign; with the old one they refuse, clearly.
        for tenant in tenants:
            assert await _signs(pool, new, tenant)
            with pytest.raises(KeyUnwrapError) as refused:
                await KeyRing(pool, old).active_key(tenant)
            assert kek_id(new) in str(refused.value) and kek_id(old) in str(refused.value)

        # Running it again (the operator not sure the first run committed) changes nothing.
        code, output = await _rewrap(own_database, old, new_file)
        assert code == 0 and "rewrapped 0 signing keys" in output and "2 already" in output
        assert await owner.fetchval("SELECT count(*) FROM audit_events") == 2
    finally:
        await pool.close()
        await owner.close()
