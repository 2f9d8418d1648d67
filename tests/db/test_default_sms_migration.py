"""Migration 0012 gives stored default SMS templates of the earlier texts, which put the claim
link beside the wallet code, the current built-in text, and leaves every other template alone.

Run as production runs it: by an owner that is no superuser, on which the table forces
row-level security.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest_asyncio

from credbatch.catalog.defaults import DEFAULT_SMS_BODY
from credbatch.config import Settings
from credbatch.db.migrate import MIGRATIONS_DIR, migrate
from credbatch.db.pool import create_pool
from credbatch.env_values import derive_role_url
from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.database import drop_database, on_database

FIRST = "{{ issuer_name }} issued you a credential. Claim it: {{ claim_url }}"
SECOND = (
    "{{ issuer_name }} issued you a credential. Claim it: {{ claim_url }}"
    "{% if tx_code %} Wallet code: {{ tx_code }}{% elif offer_url %} Wallet: {{ offer_url }}"
    "{% endif %}"
)


@dataclass(frozen=True)
class Owned:
    owner_url: str
    app: asyncpg.Pool


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def owned(db_settings: Settings) -> AsyncIterator[Owned]:
    owner = f"credbatch_test_owner_{secrets.token_hex(4)}"
    name = f"credbatch_sms_{secrets.token_hex(6)}"
    settings = on_database(db_settings, name)
    superuser = await asyncpg.connect(db_settings.database_url, database="postgres")
    await superuser.execute(f'CREATE ROLE "{owner}" LOGIN NOSUPERUSER NOBYPASSRLS')
    await superuser.execute(f'CREATE DATABASE "{name}" OWNER "{owner}"')
    owner_url = derive_role_url(settings.database_url, owner)
    try:
        await migrate(owner_url)
        app = await create_pool(settings.app_database_url, max_size=2)
        try:
            yield Owned(owner_url, app)
        finally:
            await app.close()
    finally:
        await drop_database(settings.database_url)
        await superuser.execute(f'DROP ROLE IF EXISTS "{owner}"')
        await superuser.close()


async def _store(pool: asyncpg.Pool, body: str, *, default: bool) -> tuple[uuid.UUID, uuid.UUID]:
    tenant, template = uuid.uuid4(), uuid.uuid4()
    async with tenant_transaction(pool, service_scope(tenant)) as conn:
        await conn.execute(
            "INSERT INTO sms_templates (tenant_id, id, display_name, body, is_default,"
            " created_by) VALUES ($1, $2, 'Default invitation', $3, $4, 'system')",
            tenant,
            template,
            body,
            default,
        )
    return tenant, template


async def _body(pool: asyncpg.Pool, tenant: uuid.UUID, template: uuid.UUID) -> str:
    async with tenant_transaction(pool, service_scope(tenant), readonly=True) as conn:
        body: str = await conn.fetchval("SELECT body FROM sms_templates WHERE id = $1", template)
    return body


async def test_earlier_default_texts_take_the_current_one(owned: Owned) -> None:
    first = await _store(owned.app, FIRST, default=True)
    second = await _store(owned.app, SECOND, default=True)
    custom = await _store(owned.app, SECOND, default=False)
    edited = await _store(owned.app, FIRST + " Thanks!", default=True)
    [sql] = [p.read_text() for p in MIGRATIONS_DIR.glob("0012_*.sql")]
    owner = await asyncpg.connect(owned.owner_url)
    try:
        async with owner.transaction():
            await owner.execute(sql)
        forced = await owner.fetchval(
            "SELECT relforcerowsecurity FROM pg_class WHERE relname = 'sms_templates'"
        )
    finally:
        await owner.close()
    assert forced
    assert await _body(owned.app, *first) == DEFAULT_SMS_BODY
    assert await _body(owned.app, *second) == DEFAULT_SMS_BODY
    # Not a default, or not one of the built-in texts: left as it is.
    assert await _body(owned.app, *custom) == SECOND
    assert await _body(owned.app, *edited) == FIRST + " Thanks!"
