"""Template persistence: the tenant's default is shown by reads that never write, and stored
on first use by a batch under the name the reads showed."""

from __future__ import annotations

import uuid
from dataclasses import replace

import asyncpg
import pytest

from credbatch.catalog import repository, templates
from credbatch.catalog.model import EmailTemplate
from credbatch.catalog.template_kinds import EMAIL, SMS
from credbatch.errors import NotFound
from credbatch.tenancy import service_scope, tenant_transaction, user_scope
from services.templates import kinds
from services.templates.catalog import TemplateCatalog
from tests.fixtures.rendering import InlineRenderer

_TENANT_TABLES = ("tenants", "email_templates", "sms_templates", "idempotency_keys")


async def _rows(owner_pool: asyncpg.Pool, tenant: uuid.UUID) -> dict[str, int]:
    """Every row of the tenant, counted as the owner (row-level security hides nothing)."""
    async with owner_pool.acquire() as conn:
        counts = {}
        for table in _TENANT_TABLES:
            column = "id" if table == "tenants" else "tenant_id"
            counts[table] = await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE {column} = $1", tenant
            )
        return counts


async def test_listing_a_fresh_tenant_writes_nothing_and_shows_the_defaults(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    reader = user_scope(tenant, "olga", ["observer"], [])
    catalog = TemplateCatalog(app_pool, InlineRenderer())  # nothing renders here
    before = await _rows(owner_pool, tenant)

    emails = await catalog.list_templates(reader, kinds.EMAIL, 0, "")
    sms = await catalog.list_templates(reader, kinds.SMS, 0, "")
    got = await catalog.get_template(reader, kinds.EMAIL, emails.items[0].name)

    assert await _rows(owner_pool, tenant) == before == dict.fromkeys(_TENANT_TABLES, 0)
    assert [(t.is_default, t.display_name) for t in emails.items] == [(True, "Default invitation")]
    assert [t.is_default for t in sms.items] == [True]
    assert "{{ claim_url }}" in emails.items[0].text_body and "{{ claim_url }}" in sms.items[0].body
    # A tenant that never wrote has no creation time yet: only the time may differ.
    assert replace(got, create_time=None) == replace(emails.items[0], create_time=None)
    assert not emails.next_page_token


async def test_the_default_is_stored_on_first_use_under_the_listed_name(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    scope = service_scope(tenant)
    async with tenant_transaction(app_pool, scope):
        pass  # provision the tenant
    async with tenant_transaction(app_pool, scope, readonly=True) as conn:
        listed = (await repository.list_email_templates(conn, 10, "")).items
    assert (await _rows(owner_pool, tenant))["email_templates"] == 0

    async with tenant_transaction(app_pool, scope) as conn:
        used = await repository.use_email_template(conn, None)
        again = await repository.use_email_template(conn, used.id)
    async with tenant_transaction(app_pool, scope, readonly=True) as conn:
        stored = (await repository.list_email_templates(conn, 10, "")).items

    assert listed == [used] == [again] == stored
    assert (await _rows(owner_pool, tenant))["email_templates"] == 1


async def test_naming_the_unstored_default_for_a_batch_stores_it(app_pool: asyncpg.Pool) -> None:
    scope = service_scope(uuid.uuid4())
    async with tenant_transaction(app_pool, scope):
        pass  # provision the tenant: from now on its default's create_time is fixed
    async with tenant_transaction(app_pool, scope, readonly=True) as conn:
        shown = await repository.get_sms_template(
            conn, (await repository.list_sms_templates(conn, 1, "")).items[0].id
        )
    async with tenant_transaction(app_pool, scope) as conn:
        used = await repository.use_sms_template(conn, shown.id)
        stored = await conn.fetchval("SELECT id FROM sms_templates WHERE is_default")
    assert used == shown and stored == shown.id


async def test_pages_place_the_unstored_default_where_its_row_will_be(
    app_pool: asyncpg.Pool,
) -> None:
    scope = service_scope(uuid.uuid4())
    async with tenant_transaction(app_pool, scope):
        pass  # provision the tenant: its default is older than every template made later
    for n in range(3):
        async with tenant_transaction(app_pool, scope) as conn:
            template = EmailTemplate(uuid.UUID(int=0), f"t{n}", "s", "h", "t")
            await repository.create_email_template(conn, template, "svc")

    async def walk(size: int) -> list[EmailTemplate]:
        seen: list[EmailTemplate] = []
        token = ""
        async with tenant_transaction(app_pool, scope, readonly=True) as conn:
            while True:
                page = await repository.list_email_templates(conn, size, token)
                assert len(page.items) <= size
                seen += page.items
                token = page.next_page_token
                if not token:
                    return seen

    paged = await walk(1)
    assert [t.display_name for t in paged] == ["t2", "t1", "t0", "Default invitation"]
    assert paged == await walk(2) == await walk(50)
    async with tenant_transaction(app_pool, scope) as conn:
        await repository.get_default_email_template(conn)
    assert await walk(1) == paged  # stored, it keeps its id, time and place


async def test_a_default_is_the_tenants_own(app_pool: asyncpg.Pool) -> None:
    mine, theirs = service_scope(uuid.uuid4()), service_scope(uuid.uuid4())
    async with tenant_transaction(app_pool, mine, readonly=True) as conn:
        my_default = (await repository.list_email_templates(conn, 1, "")).items[0]
    assert my_default.id == templates.default_template_id(EMAIL, mine.tenant_id)
    assert my_default.id != templates.default_template_id(SMS, mine.tenant_id)
    async with tenant_transaction(app_pool, theirs) as conn:
        with pytest.raises(NotFound):
            await repository.get_email_template(conn, my_default.id)
        with pytest.raises(NotFound):
            await repository.use_email_template(conn, my_default.id)


async def test_a_default_stored_under_another_id_stays_the_default(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    scope = service_scope(uuid.uuid4())
    async with tenant_transaction(app_pool, scope):
        pass  # provision the tenant
    earlier_id = uuid.uuid4()
    async with owner_pool.acquire() as conn:
        await conn.execute(
            """
            INSERT INTO sms_templates (tenant_id, id, display_name, body, is_default, created_by)
            VALUES ($1, $2, 'Kept', '{{ claim_url }}', true, 'system')
            """,
            scope.tenant_id,
            earlier_id,
        )
    async with tenant_transaction(app_pool, scope) as conn:
        listed = (await repository.list_sms_templates(conn, 10, "")).items
        used = await repository.use_sms_template(conn, None)
        with pytest.raises(NotFound):
            await repository.get_sms_template(
                conn, templates.default_template_id(SMS, scope.tenant_id)
            )
    assert [t.id for t in listed] == [earlier_id] and used.id == earlier_id
