"""Email, SMS and certificate templates on a real server: create, get, list, refusals."""

from __future__ import annotations

import io
import time
import uuid
from typing import Any

import grpc
import pytest
from PIL import Image

from credbatch.gen.templates.v1 import templates_pb2, templates_service_pb2
from tests.fixtures.grpc import fails
from tests.fixtures.templates import Tenant, attribute, create_schema

pb = templates_service_pb2


def _email(**overrides: str) -> templates_pb2.EmailTemplate:
    fields: dict[str, Any] = {
        "display_name": "Welcome",
        "subject": "{{ given_name }}, your credential from {{ issuer_name }}",
        "html_body": "<p>Hello {{ given_name }}</p><a href='{{ claim_url }}'>Claim</a>",
        "text_body": "Hello {{ given_name }}, claim at {{ claim_url }}",
    }
    fields.update(overrides)
    return templates_pb2.EmailTemplate(**fields)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (80, 30), (10, 60, 200)).save(out, "PNG")
    return out.getvalue()


def _certificate(**overrides: Any) -> templates_pb2.CertificateTemplate:
    fields: dict[str, Any] = {
        "display_name": "Diploma",
        "title": "Certificate for {{ given_name }}",
        "body": "Awarded to {{ given_name }}\n\non {{ issue_date }}",
        "layout": templates_pb2.CertificateLayout(
            page_size=templates_pb2.PAGE_SIZE_LETTER,
            orientation=templates_pb2.ORIENTATION_PORTRAIT,
            primary_color="#AA0000",
            logo=_png(),
            logo_mime_type="image/png",
        ),
    }
    fields.update(overrides)
    return templates_pb2.CertificateTemplate(**fields)


async def test_email_template_create_get_list_with_the_default(
    templates_stub: Any, tenant: Tenant
) -> None:
    created = await templates_stub.CreateEmailTemplate(
        pb.CreateEmailTemplateRequest(email_template=_email()), metadata=tenant.admin
    )
    assert created.name.startswith("emailTemplates/")
    assert list(created.placeholders) == ["claim_url", "given_name", "issuer_name"]
    assert not created.is_default
    got = await templates_stub.GetEmailTemplate(
        pb.GetEmailTemplateRequest(name=created.name), metadata=tenant.observer
    )
    assert got == created
    listed = await templates_stub.ListEmailTemplates(
        pb.ListEmailTemplatesRequest(), metadata=tenant.issuer
    )
    defaults = [t for t in listed.email_templates if t.is_default]
    assert len(defaults) == 1
    assert {t.name for t in listed.email_templates} == {created.name, defaults[0].name}
    default = await templates_stub.GetEmailTemplate(
        pb.GetEmailTemplateRequest(name=defaults[0].name), metadata=tenant.observer
    )
    assert default.is_default and "claim_url" in default.placeholders
    again = await templates_stub.ListEmailTemplates(
        pb.ListEmailTemplatesRequest(), metadata=tenant.admin
    )
    assert len(again.email_templates) == 2  # the default is created once


async def test_sms_template_create_get_list_with_the_default(
    templates_stub: Any, tenant: Tenant
) -> None:
    created = await templates_stub.CreateSmsTemplate(
        pb.CreateSmsTemplateRequest(
            sms_template=templates_pb2.SmsTemplate(
                display_name="Short", body="{{ issuer_name }}: {{ claim_url }}"
            )
        ),
        metadata=tenant.service,
    )
    assert list(created.placeholders) == ["claim_url", "issuer_name"]
    got = await templates_stub.GetSmsTemplate(
        pb.GetSmsTemplateRequest(name=created.name), metadata=tenant.observer
    )
    assert got == created
    listed = await templates_stub.ListSmsTemplates(
        pb.ListSmsTemplatesRequest(page_size=1), metadata=tenant.observer
    )
    assert len(listed.sms_templates) == 1 and listed.next_page_token
    rest = await templates_stub.ListSmsTemplates(
        pb.ListSmsTemplatesRequest(page_size=1, page_token=listed.next_page_token),
        metadata=tenant.observer,
    )
    both = [*listed.sms_templates, *rest.sms_templates]
    assert sorted(t.is_default for t in both) == [False, True]
    assert not rest.next_page_token


async def test_certificate_template_create_get_list(templates_stub: Any, tenant: Tenant) -> None:
    created = await templates_stub.CreateCertificateTemplate(
        pb.CreateCertificateTemplateRequest(certificate_template=_certificate()),
        metadata=tenant.admin,
    )
    assert created.layout.page_size == templates_pb2.PAGE_SIZE_LETTER
    assert created.layout.orientation == templates_pb2.ORIENTATION_PORTRAIT
    assert created.layout.primary_color == "#AA0000"
    assert created.layout.logo == _png()
    assert list(created.placeholders) == ["given_name", "issue_date"]
    got = await templates_stub.GetCertificateTemplate(
        pb.GetCertificateTemplateRequest(name=created.name), metadata=tenant.issuer
    )
    assert got == created
    listed = await templates_stub.ListCertificateTemplates(
        pb.ListCertificateTemplatesRequest(), metadata=tenant.observer
    )
    assert [t.name for t in listed.certificate_templates] == [created.name]


async def test_request_ids_return_the_first_template(templates_stub: Any, tenant: Tenant) -> None:
    first = await templates_stub.CreateEmailTemplate(
        pb.CreateEmailTemplateRequest(email_template=_email(), request_id="e-1"),
        metadata=tenant.admin,
    )
    again = await templates_stub.CreateEmailTemplate(
        pb.CreateEmailTemplateRequest(email_template=_email(), request_id="e-1"),
        metadata=tenant.admin,
    )
    assert again == first
    # The same request id with another template is refused, not answered with the first.
    reused = await fails(
        templates_stub.CreateEmailTemplate(
            pb.CreateEmailTemplateRequest(
                email_template=_email(display_name="x"), request_id="e-1"
            ),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert reused.info.reason == "REQUEST_ID_REUSED" and reused.fields == ["request_id"]
    sms = templates_pb2.SmsTemplate(display_name="s", body="hi {{ claim_url }}")
    one = await templates_stub.CreateSmsTemplate(
        pb.CreateSmsTemplateRequest(sms_template=sms, request_id="s-1"), metadata=tenant.admin
    )
    two = await templates_stub.CreateSmsTemplate(
        pb.CreateSmsTemplateRequest(sms_template=sms, request_id="s-1"), metadata=tenant.admin
    )
    assert one == two
    c1 = await templates_stub.CreateCertificateTemplate(
        pb.CreateCertificateTemplateRequest(certificate_template=_certificate(), request_id="c"),
        metadata=tenant.admin,
    )
    c2 = await templates_stub.CreateCertificateTemplate(
        pb.CreateCertificateTemplateRequest(certificate_template=_certificate(), request_id="c"),
        metadata=tenant.admin,
    )
    assert c1 == c2


async def test_issuers_and_observers_cannot_create_templates(
    templates_stub: Any, tenant: Tenant
) -> None:
    for metadata in (tenant.issuer, tenant.observer):
        await fails(
            templates_stub.CreateEmailTemplate(
                pb.CreateEmailTemplateRequest(email_template=_email()), metadata=metadata
            ),
            grpc.StatusCode.PERMISSION_DENIED,
        )


async def test_another_tenants_templates_are_not_found(
    templates_stub: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    email = await templates_stub.CreateEmailTemplate(
        pb.CreateEmailTemplateRequest(email_template=_email()), metadata=tenant.admin
    )
    certificate = await templates_stub.CreateCertificateTemplate(
        pb.CreateCertificateTemplateRequest(certificate_template=_certificate()),
        metadata=tenant.admin,
    )
    listed = await templates_stub.ListSmsTemplates(
        pb.ListSmsTemplatesRequest(), metadata=tenant.admin
    )
    default_sms = listed.sms_templates[0].name
    await fails(
        templates_stub.GetEmailTemplate(
            pb.GetEmailTemplateRequest(name=email.name), metadata=other_tenant.admin
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    await fails(
        templates_stub.GetCertificateTemplate(
            pb.GetCertificateTemplateRequest(name=certificate.name), metadata=other_tenant.admin
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    await fails(
        templates_stub.GetSmsTemplate(
            pb.GetSmsTemplateRequest(name=default_sms), metadata=other_tenant.admin
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    theirs = await templates_stub.ListEmailTemplates(
        pb.ListEmailTemplatesRequest(), metadata=other_tenant.admin
    )
    assert email.name not in {t.name for t in theirs.email_templates}


async def test_template_names_are_checked(templates_stub: Any, tenant: Tenant) -> None:
    for name in ("", "emailTemplates/nope", f"smsTemplates/{uuid.uuid4()}"):
        details = await fails(
            templates_stub.GetEmailTemplate(
                pb.GetEmailTemplateRequest(name=name), metadata=tenant.admin
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert details.fields == ["name"]
    await fails(
        templates_stub.GetEmailTemplate(
            pb.GetEmailTemplateRequest(name=f"emailTemplates/{uuid.uuid4()}"), metadata=tenant.admin
        ),
        grpc.StatusCode.NOT_FOUND,
    )


INJECTIONS = {
    "{{ ''.__class__.__mro__ }}": "TEMPLATE_UNSAFE",
    "{{ self }}": "TEMPLATE_UNSAFE",
    "{{ self._TemplateReference__context }}": "TEMPLATE_UNSAFE",
    "{{ cycler.__init__.__globals__.os }}": "TEMPLATE_UNSAFE",
    "{{ '{:>999999999}'.format(1) }}": "TEMPLATE_UNSAFE",
    "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}"
    "{% endfor %}{% endfor %}{% endfor %}": "TEMPLATE_TIMEOUT",
    "{% for a in range(1000) %}{% for b in range(1000) %}xxxxxxxxxxxx{% endfor %}"
    "{% endfor %}": "TEMPLATE_OUTPUT_TOO_LARGE",
    "{{ 'x' * 1000000000 }}": "TEMPLATE_OUTPUT_TOO_LARGE",
    "{% include 'secret' %}": "TEMPLATE_UNSAFE",
    "{{ unclosed": "TEMPLATE_SYNTAX_ERROR",
}


@pytest.mark.parametrize(("source", "reason"), INJECTIONS.items())
async def test_injection_attempts_fail_safely_at_creation_and_are_not_stored(
    templates_stub: Any, tenant: Tenant, source: str, reason: str
) -> None:
    started = time.monotonic()
    details = await fails(
        templates_stub.CreateEmailTemplate(
            pb.CreateEmailTemplateRequest(email_template=_email(html_body=source)),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert time.monotonic() - started < 3
    assert details.fields == ["email_template.html_body"]
    assert details.violations[0].reason == reason
    assert details.violations[0].description
    for kind, request in (
        (
            "sms",
            pb.CreateSmsTemplateRequest(
                sms_template=templates_pb2.SmsTemplate(display_name="s", body=source)
            ),
        ),
        (
            "certificate",
            pb.CreateCertificateTemplateRequest(certificate_template=_certificate(body=source)),
        ),
    ):
        call = (
            templates_stub.CreateSmsTemplate(request, metadata=tenant.admin)
            if kind == "sms"
            else templates_stub.CreateCertificateTemplate(request, metadata=tenant.admin)
        )
        details = await fails(call, grpc.StatusCode.INVALID_ARGUMENT)
        assert details.fields == [f"{kind}_template.body"]
    # Nothing was stored: no worker can ever get these.
    listed = await templates_stub.ListEmailTemplates(
        pb.ListEmailTemplatesRequest(), metadata=tenant.admin
    )
    assert [t.is_default for t in listed.email_templates] == [True]
    certificates = await templates_stub.ListCertificateTemplates(
        pb.ListCertificateTemplatesRequest(), metadata=tenant.admin
    )
    assert list(certificates.certificate_templates) == []


async def test_template_refusals_name_each_field(templates_stub: Any, tenant: Tenant) -> None:
    details = await fails(
        templates_stub.CreateEmailTemplate(
            pb.CreateEmailTemplateRequest(
                email_template=_email(display_name="", subject="", text_body="{% if %}")
            ),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert set(details.fields) == {
        "email_template.display_name",
        "email_template.subject",
        "email_template.text_body",
    }
    details = await fails(
        templates_stub.CreateSmsTemplate(
            pb.CreateSmsTemplateRequest(
                sms_template=templates_pb2.SmsTemplate(display_name="long", body="ł" * 700)
            ),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert [v.reason for v in details.violations] == ["SMS_TOO_LONG"]
    layout = templates_pb2.CertificateLayout(
        primary_color="blue", logo=b"GIF89a....", logo_mime_type="image/gif"
    )
    details = await fails(
        templates_stub.CreateCertificateTemplate(
            pb.CreateCertificateTemplateRequest(certificate_template=_certificate(layout=layout)),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert set(details.fields) == {
        "certificate_template.layout.primary_color",
        "certificate_template.layout.logo_mime_type",
    }
    big = templates_pb2.CertificateLayout(
        logo=b"\x89PNG" + b"0" * 600_000, logo_mime_type="image/png"
    )
    details = await fails(
        templates_stub.CreateCertificateTemplate(
            pb.CreateCertificateTemplateRequest(certificate_template=_certificate(layout=big)),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert [v.reason for v in details.violations] == ["LOGO_TOO_LARGE"]
    details = await fails(
        templates_stub.CreateCertificateTemplate(
            pb.CreateCertificateTemplateRequest(
                certificate_template=_certificate(
                    body="{% for i in range(80) %}line\n\n{% endfor %}"
                )
            ),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert [(v.field, v.reason) for v in details.violations] == [
        ("certificate_template.body", "CERTIFICATE_OVERFLOW")
    ]


async def test_placeholders_are_checked_against_a_schema(
    templates_stub: Any, tenant: Tenant
) -> None:
    schema = await create_schema(
        templates_stub, tenant.admin, attributes=[attribute("given_name"), attribute("course")]
    )
    ok = await templates_stub.CreateEmailTemplate(
        pb.CreateEmailTemplateRequest(email_template=_email(), validate_against_schema=schema.name),
        metadata=tenant.admin,
    )
    assert ok.name
    details = await fails(
        templates_stub.CreateEmailTemplate(
            pb.CreateEmailTemplateRequest(
                email_template=_email(subject="{{ nickname }}", text_body="{{ Cred_URL }}"),
                validate_against_schema=schema.name,
            ),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields == ["email_template.subject", "email_template.text_body"]
    assert details.info.reason == "UNKNOWN_PLACEHOLDER"
    descriptions = [v.description for v in details.violations]
    assert "nickname" in descriptions[0] and "`course`" in descriptions[0]
    assert "certificate" in descriptions[1]
    details = await fails(
        templates_stub.CreateSmsTemplate(
            pb.CreateSmsTemplateRequest(
                sms_template=templates_pb2.SmsTemplate(display_name="s", body="{{ Course }}"),
                validate_against_schema=schema.name,
            ),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert "did you mean `course`" in details.violations[0].description
    await fails(
        templates_stub.CreateCertificateTemplate(
            pb.CreateCertificateTemplateRequest(
                certificate_template=_certificate(),
                validate_against_schema=f"schemas/{uuid.uuid4()}",
            ),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    details = await fails(
        templates_stub.CreateCertificateTemplate(
            pb.CreateCertificateTemplateRequest(
                certificate_template=_certificate(), validate_against_schema="schemas/x"
            ),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields == ["validate_against_schema"]
