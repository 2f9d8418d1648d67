"""The catalog repository as the application role: defaults, request ids, isolation."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from credbatch.catalog import repository
from credbatch.catalog.model import EmailTemplate, SchemaDraft
from credbatch.errors import AlreadyExists, InvalidArgument, NotFound
from credbatch.schema.model import Attribute, AttributeType
from credbatch.tenancy import service_scope, tenant_transaction, user_scope


def _draft(name: str) -> SchemaDraft:
    return SchemaDraft(name, (Attribute("given_name", AttributeType.STRING, required=True),))


async def test_default_templates_are_created_once_even_concurrently(
    app_pool: asyncpg.Pool,
) -> None:
    scope = service_scope(uuid.uuid4())
    async with tenant_transaction(app_pool, scope):
        pass  # provision the tenant

    async def default_ids() -> tuple[uuid.UUID, uuid.UUID]:
        async with tenant_transaction(app_pool, scope) as conn:
            email = await repository.get_default_email_template(conn)
            sms = await repository.get_default_sms_template(conn)
            return email.id, sms.id

    results = await asyncio.gather(*(default_ids() for _ in range(6)))
    assert len(set(results)) == 1
    async with tenant_transaction(app_pool, scope, readonly=True) as conn:
        email = await repository.get_email_template(conn, results[0][0])
        sms = await repository.get_sms_template(conn, results[0][1])
        count = await conn.fetchval("SELECT count(*) FROM email_templates")
    assert email.is_default and sms.is_default
    assert "{{ claim_url }}" in email.text_body and "{{ claim_url }}" in sms.body
    assert count == 1


async def test_rows_of_another_tenant_do_not_exist_for_a_caller(app_pool: asyncpg.Pool) -> None:
    mine, theirs = service_scope(uuid.uuid4()), service_scope(uuid.uuid4())
    async with tenant_transaction(app_pool, mine) as conn:
        schema = await repository.create_schema(conn, _draft("Mine"), "svc")
        template = await repository.get_default_email_template(conn)
    async with tenant_transaction(app_pool, theirs) as conn:
        with pytest.raises(NotFound):
            await repository.get_schema(conn, schema.schema.schema_id)
    async with tenant_transaction(app_pool, theirs) as conn:
        with pytest.raises(NotFound):
            await repository.get_email_template(conn, template.id)
    async with tenant_transaction(app_pool, theirs) as conn:
        # Their own default is another row; the name "Mine" is free for them.
        assert (await repository.get_default_email_template(conn)).id != template.id
        await repository.create_schema(conn, _draft("Mine"), "svc")


async def test_request_ids_are_per_tenant_and_per_kind(app_pool: asyncpg.Pool) -> None:
    a, b = service_scope(uuid.uuid4()), service_scope(uuid.uuid4())
    async with tenant_transaction(app_pool, a) as conn:
        first = await repository.create_schema(conn, _draft("One"), "svc", "same-id")
        email = await repository.create_email_template(
            conn, EmailTemplate(uuid.UUID(int=0), "e", "s", "h", "t"), "svc", "same-id"
        )
    async with tenant_transaction(app_pool, a) as conn:
        again = await repository.create_schema(conn, _draft("Two"), "svc", "same-id")
    assert again == first and email.id != first.schema.schema_id
    async with tenant_transaction(app_pool, b) as conn:
        other = await repository.create_schema(conn, _draft("One"), "svc", "same-id")
    assert other.schema.schema_id != first.schema.schema_id


async def test_duplicate_names_and_bad_tokens(app_pool: asyncpg.Pool) -> None:
    scope = user_scope(uuid.uuid4(), "admin", ["org_admin"], [])
    async with tenant_transaction(app_pool, scope) as conn:
        await repository.create_schema(conn, _draft("Dup"), "admin")
    with pytest.raises(AlreadyExists) as caught:
        async with tenant_transaction(app_pool, scope) as conn:
            await repository.create_schema(conn, _draft("DUP"), "admin")
    assert caught.value.violations[0].field == "schema.display_name"
    async with tenant_transaction(app_pool, scope) as conn:
        page = await repository.list_email_templates(conn, 10, "")
        with pytest.raises(InvalidArgument):
            # A token of one list is refused by another.
            await repository.list_schemas(conn, 10, _token_of_email_list(page.items[0]))


def _token_of_email_list(template: EmailTemplate) -> str:
    from credbatch.paging import PagePosition, encode_token

    assert template.create_time is not None
    return encode_token("ListEmailTemplates", PagePosition(template.create_time, template.id))
