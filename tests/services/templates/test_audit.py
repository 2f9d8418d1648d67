"""Schema and template creates leave audit entries (the new resource's name, never its text),
refused ones too."""

from __future__ import annotations

from typing import Any

import asyncpg
import grpc

from credbatch.gen.templates.v1 import credential_schema_pb2, templates_pb2, templates_service_pb2
from tests.fixtures.audit import actions, audit_entries, entry_text
from tests.fixtures.grpc import fails
from tests.fixtures.templates import Tenant, attribute, create_schema

pb = templates_service_pb2


async def test_creates_are_audited(
    templates_stub: Any, tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    schema = await create_schema(
        templates_stub,
        tenant.admin,
        display_name="Course of Ada Lovelace",
        attributes=[attribute("given_name", required=True)],
        request_id="schema-1",
    )
    await templates_stub.CreateCredentialSchemaVersion(
        pb.CreateCredentialSchemaVersionRequest(
            name=schema.name.split("@")[0],
            schema=credential_schema_pb2.CredentialSchema(
                attributes=[attribute("given_name", required=True), attribute("nickname")]
            ),
        ),
        metadata=tenant.service,
    )
    sms = await templates_stub.CreateSmsTemplate(
        pb.CreateSmsTemplateRequest(
            sms_template=templates_pb2.SmsTemplate(
                display_name="Ada's", body="{{ issuer_name }}: {{ claim_url }}"
            )
        ),
        metadata=tenant.admin,
    )
    entries = await audit_entries(owner_pool, tenant.id)
    schema_id = schema.name.removeprefix("schemas/").split("@")[0]
    assert actions(entries) == [
        ("schema.create", f"schemas/{schema_id}@1", "OK"),
        ("schema_version.create", f"schemas/{schema_id}@2", "OK"),
        ("sms_template.create", sms.name, "OK"),
    ]
    assert [e["actor"] for e in entries] == ["admin-1", "svc-1", "admin-1"]
    assert [e["actor_kind"] for e in entries] == ["USER", "SERVICE", "USER"]
    assert entries[0]["request_id"] == "schema-1"
    assert entries[1]["details"] == {"attributes": 2}
    assert not any("Lovelace" in entry_text(e) or "Ada" in entry_text(e) for e in entries)


async def test_refused_creates_are_audited(
    templates_stub: Any, tenant: Tenant, owner_pool: asyncpg.Pool
) -> None:
    # Refused by the service: a template that does not parse.
    await fails(
        templates_stub.CreateEmailTemplate(
            pb.CreateEmailTemplateRequest(
                email_template=templates_pb2.EmailTemplate(
                    display_name="Broken",
                    subject="{{ claim_url",
                    html_body="<p>{{ claim_url }}</p>",
                    text_body="{{ claim_url }}",
                )
            ),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    # Refused by the role rules: an issuer may not create templates.
    await fails(
        templates_stub.CreateSmsTemplate(
            pb.CreateSmsTemplateRequest(
                sms_template=templates_pb2.SmsTemplate(display_name="x", body="{{ claim_url }}")
            ),
            metadata=tenant.issuer,
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    entries = await audit_entries(owner_pool, tenant.id)
    assert [(e["actor"], e["action"], e["resource"]) for e in entries] == [
        ("admin-1", "email_template.create", "emailTemplates"),
        ("issuer-1", "sms_template.create", ""),
    ]
    assert entries[0]["outcome"] not in ("OK", "")
    assert entries[1]["outcome"] == "ROLE_NOT_ALLOWED"
