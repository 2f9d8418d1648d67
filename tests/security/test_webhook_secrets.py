"""Webhook signing secrets are sealed at rest: a dump without the webhook key shows none.

The service seals each secret under CREDBATCH_WEBHOOK_KEK; the table, read as the owner (what
a dump or a backup holds), has ciphertext only; ``credbatch webhooks rewrap-secrets`` moves
every secret to a new key in one transaction and seals those a database stored in plain text
before secrets were sealed.
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

from credbatch.config import Settings
from credbatch.db.migrate import ensure_database, migrate
from credbatch.db.pool import create_pool
from credbatch.signing.kek import kek_id
from credbatch.tenancy import TenantScope
from credbatch.webhooks.model import EndpointDraft, EventType
from credbatch.webhooks.sealing import Sealed, SecretBox, SecretUnsealError
from credbatch.webhooks.secrets import new_secret
from services.webhooks.endpoints import WebhookEndpoints
from tests.fixtures.database import drop_database, on_database

# The CLI of this checkout (the installed `credbatch` script may be another checkout's).
ROOT = Path(__file__).resolve().parents[2]
CLI = (sys.executable, "-m", "credbatch.cli.main")
DRAFT = EndpointDraft(url="http://127.0.0.1:9/hook", event_types=(EventType.BATCH_COMPLETED,))


def admin(tenant: uuid.UUID) -> TenantScope:
    return TenantScope(tenant, "admin", frozenset({"org_admin"}), ())


async def create(pool: asyncpg.Pool, key: bytes, tenant: uuid.UUID) -> tuple[uuid.UUID, str]:
    """An endpoint created through the service sealing under ``key``: (id, its secret)."""
    endpoints = WebhookEndpoints(pool, development=True, box=SecretBox(key))
    created = await endpoints.create(admin(tenant), DRAFT, [], "")
    return created.id, created.secret


async def stored(owner: asyncpg.Connection) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await owner.fetch(
        "SELECT * FROM webhook_secrets ORDER BY tenant_id, endpoint_id"
    )
    return rows


def opens(key: bytes, row: asyncpg.Record) -> str:
    sealed = Sealed(bytes(row["secret_enc"]), bytes(row["nonce"]), row["kek_id"])
    return SecretBox(key).open(row["tenant_id"], row["endpoint_id"], row["id"], sealed)


async def test_a_dump_without_the_key_shows_no_usable_secret(
    settings: Settings, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    key = settings.webhook_kek_bytes()
    endpoint, secret = await create(app_pool, key, tenant)
    assert secret.startswith("whsec_")
    (row,) = await owner_pool.fetch("SELECT * FROM webhook_secrets WHERE tenant_id = $1", tenant)
    # Every column as a dump would print it.
    dumped = " ".join(repr(value) for value in row.values())
    assert "whsec_" not in dumped
    assert secret[len("whsec_") :] not in dumped
    assert base64.b64decode(secret[len("whsec_") :]) not in bytes(row["secret_enc"])
    assert row["legacy_secret"] is None and row["kek_id"] == kek_id(key)
    # With the key it opens; with another, it says which key it needs.
    assert opens(key, row) == secret
    with pytest.raises(SecretUnsealError, match=kek_id(key)):
        opens(os.urandom(32), row)
    assert row["endpoint_id"] == endpoint


@pytest_asyncio.fixture(loop_scope="session")
async def own_database(db_settings: Settings) -> AsyncIterator[Settings]:
    """A database of its own: rewrap-secrets moves every tenant's secrets."""
    name = f"credbatch_whkek_{secrets.token_hex(6)}"
    settings = on_database(db_settings, name)
    await ensure_database(settings.database_url)
    try:
        await migrate(settings.database_url)
        yield settings
    finally:
        await drop_database(settings.database_url)


async def rewrap(settings: Settings, current: bytes, new_file: Path | None) -> tuple[int, str]:
    env = {
        **os.environ,
        "CREDBATCH_DATABASE_URL": settings.database_url,
        "CREDBATCH_WEBHOOK_KEK": base64.b64encode(current).decode(),
    }
    args = ["--new-kek-file", str(new_file)] if new_file else []
    process = await asyncio.create_subprocess_exec(
        *CLI,
        "webhooks",
        "rewrap-secrets",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_rewrap_seals_plain_text_secrets_and_moves_every_secret_to_the_new_key(
    own_database: Settings, tmp_path: Path
) -> None:
    old, new, stranger = os.urandom(32), os.urandom(32), os.urandom(32)
    owner = await asyncpg.connect(own_database.database_url)
    pool = await create_pool(own_database.app_database_url, max_size=2)
    try:
        tenants = [uuid.uuid4(), uuid.uuid4()]
        issued = {tenant: await create(pool, old, tenant) for tenant in tenants}
        # A secret a database stored in plain text before secrets were sealed.
        legacy_tenant, plain = uuid.uuid4(), new_secret()
        endpoint, _ = await create(pool, old, legacy_tenant)
        await owner.execute(
            "UPDATE webhook_secrets SET legacy_secret = $2, secret_enc = NULL, nonce = NULL,"
            " kek_id = NULL WHERE tenant_id = $1",
            legacy_tenant,
            plain,
        )
        issued[legacy_tenant] = (endpoint, plain)

        # Without a new key: the plain-text one is sealed under the current key.
        code, output = await rewrap(own_database, old, None)
        assert code == 0, output
        assert "rewrapped 0 webhook secrets and sealed 1" in output and "2 already" in output
        rows = await stored(owner)
        assert {r["kek_id"] for r in rows} == {kek_id(old)}
        assert all(r["legacy_secret"] is None for r in rows)
        assert {r["tenant_id"]: opens(old, r) for r in rows} == {
            t: s for t, (_, s) in issued.items()
        }

        new_file = tmp_path / "new.kek"
        new_file.write_text(base64.b64encode(new).decode() + "\n")
        # Run with a key that opens none: nothing moves.
        before = await stored(owner)
        code, output = await rewrap(own_database, stranger, new_file)
        assert code != 0 and "sealed under key" in output
        assert await stored(owner) == before

        code, output = await rewrap(own_database, old, new_file)
        assert code == 0, output
        assert "rewrapped 3 webhook secrets and sealed 0 stored in plain text under key " in output
        assert kek_id(new) in output and "restart the webhook service" in output
        rows = await stored(owner)
        assert {r["kek_id"] for r in rows} == {kek_id(new)}
        assert {r["tenant_id"]: opens(new, r) for r in rows} == {
            t: s for t, (_, s) in issued.items()
        }
        # Again (not sure the first run committed): nothing to do.
        code, output = await rewrap(own_database, old, new_file)
        assert code == 0 and "rewrapped 0" in output and "3 already" in output
        # One entry per run and tenant whose secrets it moved or sealed, none for a no-op.
        audited = await owner.fetch(
            "SELECT tenant_id, actor, actor_kind, details::text FROM audit_events"
            " WHERE action = 'webhook_secrets.rewrap' ORDER BY occurred_at"
        )
        assert {(r["actor"], r["actor_kind"]) for r in audited} == {
            ("cli:webhooks-rewrap-secrets", "SYSTEM")
        }
        first = audited[0]
        assert (first["tenant_id"], json.loads(first["details"])) == (
            legacy_tenant,
            {"secrets": 1, "kek_id": kek_id(old)},
        )
        assert sorted(
            (str(r["tenant_id"]), json.loads(r["details"])["kek_id"]) for r in audited[1:]
        ) == sorted((str(t), kek_id(new)) for t in issued)
    finally:
        await pool.close()
        await owner.close()
