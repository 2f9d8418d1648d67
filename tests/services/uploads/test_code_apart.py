"""An upload whose templates would send the wallet code with the link to its offer, or lose one
of them, is refused naming the template; the rules depend on the batch's mediums and claim
mode. Templates are stored directly, as a template created before the rules may be."""

from __future__ import annotations

import uuid

import asyncpg
import grpc

from credbatch.catalog import repository as catalog
from credbatch.catalog.model import EmailTemplate, SmsTemplate
from credbatch.gen.common.v1 import claim_mode_pb2
from credbatch.tenancy import TenantScope, tenant_transaction
from tests.fixtures.grpc import error_details
from tests.fixtures.uploads import (
    EMAIL,
    HEADER,
    SMS,
    Tenant,
    batch_count,
    csv_file,
    refused,
    row,
)

LINK_ONLY = "Claim it: {{ claim_url }}"
BOTH = "Claim it: {{ claim_url }} Wallet code: {{ tx_code }}"
APART = "{% if tx_code %}Code {{ tx_code }}{% else %}Claim {{ claim_url }}{% endif %}"


async def _sms(app_pool: asyncpg.Pool, tenant: Tenant, display_name: str, body: str) -> str:
    scope = TenantScope(tenant.tenant_id, "admin", frozenset({"org_admin"}))
    async with tenant_transaction(app_pool, scope) as conn:
        stored = await catalog.create_sms_template(
            conn, SmsTemplate(uuid.uuid4(), display_name, body), "admin"
        )
    return stored.name


async def _email(app_pool: asyncpg.Pool, tenant: Tenant, display_name: str, text: str) -> str:
    scope = TenantScope(tenant.tenant_id, "admin", frozenset({"org_admin"}))
    async with tenant_transaction(app_pool, scope) as conn:
        stored = await catalog.create_email_template(
            conn,
            EmailTemplate(uuid.uuid4(), display_name, "Hello", f"<p>{text}</p>", text),
            "admin",
        )
    return stored.name


def _sms_only_file() -> bytes:
    """A one-row file without the email column."""
    return csv_file([row(1).split(",", 1)[1]], header=HEADER.split(",", 1)[1])


def _found(error: grpc.aio.AioRpcError) -> list[tuple[str, str, str]]:
    details = error_details(error)
    assert details.bad_request is not None
    return [(v.field, v.reason, v.description) for v in details.bad_request.field_violations]


async def test_a_wallet_batch_by_email_and_sms_needs_the_code_in_its_sms(
    tenant: Tenant, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    link_only = await _sms(app_pool, tenant, "Link SMS", LINK_ONLY)
    error = await refused(tenant, csv_file([row(1)]), sms_template=link_only)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, reason, description)] = _found(error)
    assert (field, reason) == ("header.sms_template", "CODE_MISSING")
    assert description.startswith(
        "The SMS template `Link SMS` does not use `tx_code`: a wallet batch that invites by "
        "email and SMS sends the link by email and the wallet code by SMS"
    )
    assert await batch_count(owner_pool, tenant.tenant_id) == 0
    # The same template suits a batch whose offers ask for no code.
    await tenant.upload(_sms_only_file(), mediums=[SMS], sms_template=link_only)
    await tenant.upload(
        csv_file([row(2)]),
        sms_template=link_only,
        claim_mode=claim_mode_pb2.CLAIM_MODE_DOWNLOAD,
    )
    assert await batch_count(owner_pool, tenant.tenant_id) == 2


async def test_a_stored_sms_with_code_and_link_is_refused_whatever_the_batch(
    tenant: Tenant, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    both = await _sms(app_pool, tenant, "Old SMS", BOTH)
    for content, mediums in ((csv_file([row(1)]), [EMAIL, SMS]), (_sms_only_file(), [SMS])):
        error = await refused(tenant, content, mediums=mediums, sms_template=both)
        [(field, reason, description)] = _found(error)
        assert (field, reason) == ("header.sms_template", "CODE_WITH_LINK")
        assert description.startswith(
            "The SMS template `Old SMS` can show `tx_code` together with `claim_url`"
        )
    assert await batch_count(owner_pool, tenant.tenant_id) == 0


async def test_the_email_of_such_a_batch_must_carry_a_link_and_never_the_code(
    tenant: Tenant, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    apart = await _sms(app_pool, tenant, "Apart", APART)
    bare = await _email(app_pool, tenant, "Bare", "Hello {{ name }}")
    error = await refused(tenant, csv_file([row(1)]), email_template=bare, sms_template=apart)
    [(field, reason, description)] = _found(error)
    assert (field, reason) == ("header.email_template", "LINK_MISSING")
    assert description.startswith(
        "The email template `Bare` uses neither `claim_url` nor `offer_url`"
    )
    coded = await _email(app_pool, tenant, "Coded", "{{ claim_url }} {{ tx_code }}")
    error = await refused(tenant, csv_file([row(1)]), email_template=coded, sms_template=apart)
    assert [(f, r) for f, r, _ in _found(error)] == [
        ("header.email_template.html_body", "CODE_IN_EMAIL"),
        ("header.email_template.text_body", "CODE_IN_EMAIL"),
    ]
    assert await batch_count(owner_pool, tenant.tenant_id) == 0
    response = await tenant.upload(csv_file([row(1)]), sms_template=apart)
    assert response.batch.sms_template == apart
