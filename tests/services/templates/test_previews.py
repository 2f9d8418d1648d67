"""RenderTemplatePreview on a real server: email, SMS and certificate (PDF + QR read back)."""

from __future__ import annotations

import io
import time
from typing import Any

import grpc
import pypdf

from credbatch.gen.templates.v1 import templates_pb2, templates_service_pb2
from tests.fixtures.grpc import fails
from tests.fixtures.templates import Tenant, attribute, create_schema
from tests.templating.pdf_qr import decode_qr

pb = templates_service_pb2


async def _email(stub: Any, tenant: Tenant, **fields: str) -> Any:
    template = templates_pb2.EmailTemplate(
        display_name="e",
        subject=fields.get("subject", "Hi {{ given_name }}"),
        html_body=fields.get("html_body", "<p>{{ given_name }} passed {{ course }}</p>"),
        text_body=fields.get("text_body", "{{ given_name }}: {{ claim_url }}"),
    )
    return await stub.CreateEmailTemplate(
        pb.CreateEmailTemplateRequest(email_template=template), metadata=tenant.admin
    )


async def test_email_preview_uses_schema_samples_and_escapes_html(
    templates_stub: Any, tenant: Tenant
) -> None:
    schema = await create_schema(
        templates_stub, tenant.admin, attributes=[attribute("given_name"), attribute("course")]
    )
    template = await _email(templates_stub, tenant)
    preview = await templates_stub.RenderTemplatePreview(
        pb.RenderTemplatePreviewRequest(
            template=template.name, schema=schema.name, sample_values={"course": "<b>Math</b>"}
        ),
        metadata=tenant.observer,
    )
    assert preview.WhichOneof("preview") == "email"
    assert preview.email.subject == "Hi Example text"
    assert preview.email.html_body == "<p>Example text passed &lt;b&gt;Math&lt;/b&gt;</p>"
    assert preview.email.text_body == "Example text: https://issuer.example.com/claim/SAMPLE"


async def test_a_preview_without_schema_renders_placeholder_names(
    templates_stub: Any, tenant: Tenant
) -> None:
    template = await _email(templates_stub, tenant)
    preview = await templates_stub.RenderTemplatePreview(
        pb.RenderTemplatePreviewRequest(template=template.name), metadata=tenant.issuer
    )
    assert preview.email.subject == "Hi given_name"


async def test_values_are_data_never_template_code(templates_stub: Any, tenant: Tenant) -> None:
    template = await _email(templates_stub, tenant)
    preview = await templates_stub.RenderTemplatePreview(
        pb.RenderTemplatePreviewRequest(
            template=template.name, sample_values={"given_name": "{{ ''.__class__ }}"}
        ),
        metadata=tenant.admin,
    )
    assert preview.email.subject == "Hi {{ ''.__class__ }}"


async def test_sms_preview_reports_segments(templates_stub: Any, tenant: Tenant) -> None:
    sms = await templates_stub.CreateSmsTemplate(
        pb.CreateSmsTemplateRequest(
            sms_template=templates_pb2.SmsTemplate(display_name="s", body="Hi {{ given_name }}")
        ),
        metadata=tenant.admin,
    )
    short = await templates_stub.RenderTemplatePreview(
        pb.RenderTemplatePreviewRequest(template=sms.name, sample_values={"given_name": "Ann"}),
        metadata=tenant.admin,
    )
    assert (short.sms.body, short.sms.segment_count, short.sms.encoding, short.sms.length) == (
        "Hi Ann",
        1,
        "GSM-7",
        6,
    )
    long = await templates_stub.RenderTemplatePreview(
        pb.RenderTemplatePreviewRequest(
            template=sms.name, sample_values={"given_name": "Łukasz" * 20}
        ),
        metadata=tenant.admin,
    )
    assert (long.sms.encoding, long.sms.length, long.sms.segment_count) == ("UCS-2", 123, 2)


async def test_certificate_preview_is_a_pdf_with_the_values_and_a_qr_of_cred_url(
    templates_stub: Any, tenant: Tenant
) -> None:
    schema = await create_schema(
        templates_stub,
        tenant.admin,
        attributes=[attribute("given_name"), attribute("course")],
        requires_certificate=True,
    )
    certificate = await templates_stub.CreateCertificateTemplate(
        pb.CreateCertificateTemplateRequest(
            certificate_template=templates_pb2.CertificateTemplate(
                display_name="c",
                title="{{ course }}",
                body="Awarded to {{ given_name }}\n\nVerify at {{ Cred_URL }}",
            ),
            validate_against_schema=schema.name,
        ),
        metadata=tenant.admin,
    )
    preview = await templates_stub.RenderTemplatePreview(
        pb.RenderTemplatePreviewRequest(
            template=certificate.name,
            schema=schema.name,
            sample_values={"given_name": "Zoë Åberg"},
        ),
        metadata=tenant.observer,
    )
    pdf = preview.certificate.pdf
    assert pdf.startswith(b"%PDF-")
    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "Zoë Åberg" in text
    assert "Example text" in text  # the schema's sample value of `course`
    assert preview.certificate.cred_url == "https://issuer.example.com/c/SAMPLE"
    assert decode_qr(pdf) == [preview.certificate.cred_url]

    chosen = "https://certs.example.org/c/abc123"
    again = await templates_stub.RenderTemplatePreview(
        pb.RenderTemplatePreviewRequest(
            template=certificate.name, sample_values={"Cred_URL": chosen}
        ),
        metadata=tenant.observer,
    )
    assert again.certificate.cred_url == chosen
    assert decode_qr(again.certificate.pdf) == [chosen]


async def test_preview_refusals(templates_stub: Any, tenant: Tenant, other_tenant: Tenant) -> None:
    schema = await create_schema(templates_stub, tenant.admin, attributes=[attribute("name")])
    template = await _email(templates_stub, tenant)
    details = await fails(
        templates_stub.RenderTemplatePreview(
            pb.RenderTemplatePreviewRequest(template=template.name, schema=schema.name),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert set(details.fields) == {"template.subject", "template.html_body", "template.text_body"}
    details = await fails(
        templates_stub.RenderTemplatePreview(
            pb.RenderTemplatePreviewRequest(template=template.name, sample_values={"bogus": "1"}),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields == ["sample_values[bogus]"]
    for name in ("", "templates/x", "emailTemplates/not-a-uuid"):
        details = await fails(
            templates_stub.RenderTemplatePreview(
                pb.RenderTemplatePreviewRequest(template=name), metadata=tenant.admin
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert details.fields == ["template"]
    details = await fails(
        templates_stub.RenderTemplatePreview(
            pb.RenderTemplatePreviewRequest(template=template.name, schema="bad"),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields == ["schema"]
    await fails(
        templates_stub.RenderTemplatePreview(
            pb.RenderTemplatePreviewRequest(template=template.name), metadata=other_tenant.admin
        ),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_a_preview_that_would_not_fit_fails_with_a_clear_error(
    templates_stub: Any, tenant: Tenant
) -> None:
    certificate = await templates_stub.CreateCertificateTemplate(
        pb.CreateCertificateTemplateRequest(
            certificate_template=templates_pb2.CertificateTemplate(
                display_name="c", title="T", body="{{ given_name }}"
            )
        ),
        metadata=tenant.admin,
    )
    started = time.monotonic()
    details = await fails(
        templates_stub.RenderTemplatePreview(
            pb.RenderTemplatePreviewRequest(
                template=certificate.name, sample_values={"given_name": "word " * 800}
            ),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert time.monotonic() - started < 3
    assert details.violations[0].reason in {
        "CERTIFICATE_OVERFLOW",
        "TEMPLATE_OUTPUT_TOO_LARGE",
    }
