"""The upload's header read in one statement (services.uploads.look_up) and the store's last
statement carrying the batch's view: what they find, per tenant, and the round trips left."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import pytest

from credbatch import names
from credbatch.batches.repository import get_batch
from credbatch.catalog import repository as catalog
from credbatch.catalog.defaults import EMAIL_DEFAULT, SMS_DEFAULT
from credbatch.catalog.model import EmailTemplate, SmsTemplate
from credbatch.catalog.template_kinds import EMAIL as EMAIL_KIND
from credbatch.catalog.templates import default_template_id
from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.schema.model import Medium
from credbatch.tenancy import TenantScope, tenant_transaction
from services.uploads.look_up import read_header
from services.uploads.model import CheckedRequest, UploadRequest
from services.uploads.request_rules import check_request
from services.uploads.uploader import WHOLE_FILE_BYTES, Uploader
from tests.fixtures.uploads import EMAIL, HEADER, SMS, Tenant, csv_file, refused, row


def _issuer(tenant: Tenant) -> TenantScope:
    return TenantScope(tenant.tenant_id, "alice", frozenset({"issuer"}), ("sales",))


def _admin(tenant: Tenant) -> TenantScope:
    return TenantScope(tenant.tenant_id, "admin", frozenset({"org_admin"}))


async def _email_template(pool: asyncpg.Pool, tenant: Tenant, display_name: str) -> str:
    async with tenant_transaction(pool, _admin(tenant)) as conn:
        stored = await catalog.create_email_template(
            conn,
            EmailTemplate(
                uuid.uuid4(),
                display_name,
                EMAIL_DEFAULT["subject"],
                EMAIL_DEFAULT["html_body"],
                EMAIL_DEFAULT["text_body"],
            ),
            "admin",
        )
    return stored.name


async def _sms_template(pool: asyncpg.Pool, tenant: Tenant, display_name: str) -> str:
    async with tenant_transaction(pool, _admin(tenant)) as conn:
        stored = await catalog.create_sms_template(
            conn,
            SmsTemplate(uuid.uuid4(), display_name, SMS_DEFAULT["body"]),
            "admin",
        )
    return stored.name


def _checked(tenant: Tenant, **header: Any) -> CheckedRequest:
    fields: dict[str, Any] = {
        "schema": tenant.schema,
        "mediums": (Medium.EMAIL, Medium.SMS),
        "filename": "holders.csv",
        **header,
    }
    return check_request(UploadRequest(**fields), _issuer(tenant))


async def test_the_header_read_finds_only_the_callers_tenant(
    tenant: Tenant, other_tenant: Tenant, app_pool: asyncpg.Pool
) -> None:
    theirs = await _email_template(app_pool, other_tenant, "Theirs")
    their_sms = await _sms_template(app_pool, other_tenant, "Their SMS")
    await other_tenant.upload(csv_file([row(1)]), request_id="theirs")
    their_schema = other_tenant.schema
    async with tenant_transaction(app_pool, _issuer(tenant), readonly=True) as conn:
        # Nothing of the other tenant: its request id, its schema, its templates, its
        # stored defaults (this tenant has stored none yet).
        found = await read_header(conn, _checked(tenant, request_id="theirs"))
        assert found.earlier is None and found.email is None and found.sms is None
        assert found.schema is not None and found.schema.schema.name == tenant.schema
        found = await read_header(
            conn,
            _checked(
                tenant,
                schema=their_schema,
                email_template=theirs,
                sms_template=their_sms,
            ),
        )
        assert found.schema is None and found.email is None and found.sms is None
    async with tenant_transaction(app_pool, _issuer(other_tenant), readonly=True) as conn:
        found = await read_header(
            conn,
            _checked(other_tenant, request_id="theirs", email_template=theirs, sms_template=""),
        )
        assert found.earlier is not None
        assert found.email is not None and found.email.name == theirs
        assert found.sms is not None and found.sms.is_default


async def test_a_schema_version_that_does_not_exist_is_not_found(
    tenant: Tenant, app_pool: asyncpg.Pool
) -> None:
    async with tenant_transaction(app_pool, _issuer(tenant), readonly=True) as conn:
        found = await read_header(conn, _checked(tenant, schema=f"{tenant.schema}@2"))
        assert found.schema is None
        found = await read_header(conn, _checked(tenant, schema=f"{tenant.schema}@1"))
        assert found.schema is not None and found.schema.schema.version == 1
    error = await refused(tenant, csv_file([row(1)]), schema=f"{tenant.schema}@2")
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_uploads_use_the_named_templates_and_refuse_another_tenants(
    tenant: Tenant, other_tenant: Tenant, app_pool: asyncpg.Pool
) -> None:
    mine = await _email_template(app_pool, tenant, "Mine")
    my_sms = await _sms_template(app_pool, tenant, "My SMS")
    theirs = await _email_template(app_pool, other_tenant, "Theirs")
    response = await tenant.upload(csv_file([row(1)]), email_template=mine, sms_template=my_sms)
    assert response.batch.email_template == mine
    assert response.batch.sms_template == my_sms
    error = await refused(tenant, csv_file([row(1)]), email_template=theirs)
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # The defaults, stored on first use, then found by the header's statement.
    for _ in range(2):
        response = await tenant.upload(csv_file([row(2)]))
        default = default_template_id(EMAIL_KIND, tenant.tenant_id)
        assert response.batch.email_template == names.format_name(names.EMAIL_TEMPLATES, default)


async def _chunks(content: bytes) -> AsyncIterator[bytes]:
    yield content


@pytest.mark.parametrize(("rows", "round_trips"), [(1, 6), (300, 8)])
async def test_an_upload_is_six_or_eight_round_trips_and_answers_with_the_stored_view(
    tenant: Tenant, upload_settings: Settings, rows: int, round_trips: int
) -> None:
    """A small file, read whole before the database is asked: BEGIN with the scope, the
    header's statement, claim and batch, records, quota with audit and the batch's view,
    COMMIT. A larger one (over WHOLE_FILE_BYTES) is looked up in a transaction of its own
    first: BEGIN, the header's statement, COMMIT."""
    assert (len(csv_file([row(i) for i in range(rows)])) > WHOLE_FILE_BYTES) == (rows > 1)
    pool = await create_pool(upload_settings.app_database_url, min_size=1, max_size=1)
    sent: list[str] = []

    def log(record: Any) -> None:
        sent.append(record.query)

    try:
        uploader = Uploader(upload_settings, pool)
        caller = _issuer(tenant)

        def request(request_id: str) -> UploadRequest:
            return UploadRequest(
                schema=tenant.schema,
                mediums=(Medium.EMAIL, Medium.SMS),
                filename="one.csv",
                request_id=request_id,
                reminder_days=(3,),
            )

        content = csv_file([row(i) for i in range(rows)])
        # The first: the tenant provisioned, its default template stored.
        await uploader.upload(caller, request("first"), _chunks(content))
        async with pool.acquire() as conn:
            conn.add_query_logger(log)
        outcome = await uploader.upload(caller, request("second"), _chunks(content))
        await asyncio.sleep(0.05)  # the logger runs from the event loop
        async with pool.acquire() as conn:
            conn.remove_query_logger(log)
        assert len(sent) == round_trips, sent
        assert outcome.batch is not None
        async with tenant_transaction(pool, caller, readonly=True) as conn:
            stored = await get_batch(conn, outcome.batch.id)
        assert stored is not None
        assert dataclasses.asdict(outcome.batch) == dataclasses.asdict(stored)
        assert outcome.batch.reminder_days == (3,) and outcome.batch.total == rows
        # A retry: answered from the earlier batch, nothing stored.
        again = await uploader.upload(caller, request("second"), _chunks(content))
        assert again.batch is not None and again.batch.id == outcome.batch.id
    finally:
        await pool.close()


@pytest.mark.parametrize("mediums", [(EMAIL,), (SMS,), (EMAIL, SMS)])
async def test_each_medium_shape_uploads(tenant: Tenant, mediums: tuple[int, ...]) -> None:
    # Each shape is a statement of its own (the templates it reads).
    recipients = {EMAIL: "email", SMS: "phone"}
    left_out = [recipients[m] for m in (EMAIL, SMS) if m not in mediums]
    columns = [c for c in HEADER.split(",") if c not in left_out]
    cells = dict(zip(HEADER.split(","), row(1).split(","), strict=True))
    content = csv_file([",".join(cells[c] for c in columns)], header=",".join(columns))
    request_id = f"shape-{'-'.join(map(str, mediums))}"
    response = await tenant.upload(content, mediums=mediums, request_id=request_id)
    again = await tenant.upload(content, mediums=mediums, request_id=request_id)
    assert response.batch.total_records == 1 and again.batch.name == response.batch.name
