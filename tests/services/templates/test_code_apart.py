"""Templates that would send the wallet code with the link to its offer are refused when created,
on a real server; nothing of them is stored."""

from __future__ import annotations

from typing import Any

import grpc

from credbatch.catalog.defaults import DEFAULT_SMS_BODY
from credbatch.gen.templates.v1 import templates_pb2, templates_service_pb2
from tests.fixtures.grpc import fails
from tests.fixtures.templates import Tenant

pb = templates_service_pb2


async def _sms_names(templates_stub: Any, tenant: Tenant) -> list[str]:
    listed = await templates_stub.ListSmsTemplates(
        pb.ListSmsTemplatesRequest(), metadata=tenant.admin
    )
    return [t.display_name for t in listed.sms_templates if not t.is_default]


async def test_an_sms_showing_the_code_beside_a_link_is_refused(
    templates_stub: Any, tenant: Tenant
) -> None:
    for body, shown in (
        ("Claim: {{ claim_url }} Wallet code: {{ tx_code }}", "`claim_url`"),
        ("{{ offer_url }}{% if tx_code %} code {{ tx_code }}{% endif %}", "`offer_url`"),
        (
            "{{ claim_url }} {{ offer_url }} {{ tx_code }}",
            "`claim_url` and `offer_url`",
        ),
    ):
        details = await fails(
            templates_stub.CreateSmsTemplate(
                pb.CreateSmsTemplateRequest(
                    sms_template=templates_pb2.SmsTemplate(display_name="Both", body=body)
                ),
                metadata=tenant.admin,
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert details.info.reason == "INVALID_TEMPLATE"
        [violation] = details.violations
        assert (violation.field, violation.reason) == ("sms_template.body", "CODE_WITH_LINK")
        assert violation.description.startswith(
            f"The SMS template `Both` can show `tx_code` together with {shown}: the wallet code "
            "must never travel with the link to its offer"
        )
    assert await _sms_names(templates_stub, tenant) == []


async def test_an_sms_keeping_them_apart_is_accepted(templates_stub: Any, tenant: Tenant) -> None:
    for name, body in (
        ("Apart", "{% if tx_code %}Code {{ tx_code }}{% else %}Claim {{ claim_url }}{% endif %}"),
        ("Code only", "Your wallet code: {{ tx_code }}"),
        ("Link only", "Claim it: {{ claim_url }}"),
        ("Like the default", DEFAULT_SMS_BODY),
    ):
        created = await templates_stub.CreateSmsTemplate(
            pb.CreateSmsTemplateRequest(
                sms_template=templates_pb2.SmsTemplate(display_name=name, body=body)
            ),
            metadata=tenant.admin,
        )
        assert created.display_name == name


async def test_an_email_using_the_code_is_refused(templates_stub: Any, tenant: Tenant) -> None:
    details = await fails(
        templates_stub.CreateEmailTemplate(
            pb.CreateEmailTemplateRequest(
                email_template=templates_pb2.EmailTemplate(
                    display_name="Mail",
                    subject="Your credential",
                    html_body="<a href='{{ claim_url }}'>Claim</a>",
                    text_body="Claim at {{ claim_url }}{% if tx_code %}, code {{ tx_code }}"
                    "{% endif %}",
                )
            ),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    [violation] = details.violations
    assert (violation.field, violation.reason) == ("email_template.text_body", "CODE_IN_EMAIL")
    assert violation.description.startswith(
        "The email template `Mail` uses `tx_code`: the wallet code never goes by email"
    )
    listed = await templates_stub.ListEmailTemplates(
        pb.ListEmailTemplatesRequest(), metadata=tenant.admin
    )
    assert [t.is_default for t in listed.email_templates] == [True]
