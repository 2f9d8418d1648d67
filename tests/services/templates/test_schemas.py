"""CreateCredentialSchema(Version), GetCredentialSchema, ListCredentialSchemas on a real server."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest

from credbatch.gen.templates.v1 import credential_schema_pb2, templates_service_pb2
from tests.fixtures.grpc import fails
from tests.fixtures.templates import T, Tenant, attribute, create_schema

pb = templates_service_pb2


async def test_an_org_admin_creates_a_schema_at_version_1(
    templates_stub: Any, tenant: Tenant
) -> None:
    created = await create_schema(templates_stub, tenant.admin, display_name="Welding Course")
    assert created.name.startswith("schemas/")
    uuid.UUID(created.name.removeprefix("schemas/"))
    assert (created.version, created.latest_version) == (1, 1)
    assert created.display_name == "Welding Course"
    assert [a.name for a in created.attributes][:2] == ["given_name", "points"]
    assert created.attributes[8].enum_values == ["Gold", "Silver"]
    assert created.create_time.seconds > 0
    got = await templates_stub.GetCredentialSchema(
        pb.GetCredentialSchemaRequest(name=created.name), metadata=tenant.observer
    )
    assert got == created


async def test_a_service_may_create_an_issuer_or_observer_may_not(
    templates_stub: Any, tenant: Tenant
) -> None:
    await create_schema(templates_stub, tenant.service)
    for metadata in (tenant.issuer, tenant.observer):
        details = await fails(
            create_schema(templates_stub, metadata), grpc.StatusCode.PERMISSION_DENIED
        )
        assert details.info.reason


@pytest.mark.parametrize("reserved", ["email", "Phone", "Cred_URL"])
async def test_reserved_attribute_names_are_refused_with_the_reason(
    templates_stub: Any, tenant: Tenant, reserved: str
) -> None:
    details = await fails(
        create_schema(
            templates_stub, tenant.admin, attributes=[attribute("a"), attribute(reserved)]
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields == ["schema.attributes[1].name"]
    assert details.bad_request is not None
    violation = details.violations[0]
    assert violation.reason == "RESERVED_ATTRIBUTE_NAME"
    assert "reserved" in violation.description


async def test_every_problem_of_a_definition_is_named(templates_stub: Any, tenant: Tenant) -> None:
    details = await fails(
        create_schema(
            templates_stub,
            tenant.admin,
            display_name=" ",
            attributes=[
                attribute("Grade"),
                attribute("grade"),
                attribute("level", T.ATTRIBUTE_TYPE_ENUM),
                attribute("kind", T.ATTRIBUTE_TYPE_UNSPECIFIED),
                attribute("has space"),
            ],
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert set(details.fields) == {
        "schema.display_name",
        "schema.attributes[1].name",
        "schema.attributes[2].enum_values",
        "schema.attributes[3].type",
        "schema.attributes[4].name",
    }
    assert details.info.reason == "INVALID_SCHEMA"


async def test_no_attributes_is_refused(templates_stub: Any, tenant: Tenant) -> None:
    details = await fails(
        create_schema(templates_stub, tenant.admin, attributes=[]),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields == ["schema.attributes"]


async def test_display_names_are_unique_per_tenant_ignoring_case(
    templates_stub: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    await create_schema(templates_stub, tenant.admin, display_name="Safety Training")
    details = await fails(
        create_schema(templates_stub, tenant.admin, display_name="safety training"),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert details.fields == ["schema.display_name"]
    # Another tenant may use the same name.
    await create_schema(templates_stub, other_tenant.admin, display_name="Safety Training")


async def test_a_retried_request_id_returns_the_first_result(
    templates_stub: Any, tenant: Tenant
) -> None:
    first = await create_schema(
        templates_stub, tenant.admin, display_name="Retried", request_id="req-1"
    )
    again = await create_schema(
        templates_stub, tenant.admin, display_name="Retried", request_id="req-1"
    )
    assert again == first
    # The same request id with another schema is refused, not answered with the first.
    reused = await fails(
        create_schema(templates_stub, tenant.admin, request_id="req-1", display_name="Other"),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert reused.info.reason == "REQUEST_ID_REUSED"
    page = await templates_stub.ListCredentialSchemas(
        pb.ListCredentialSchemasRequest(), metadata=tenant.admin
    )
    assert [s.name for s in page.schemas] == [first.name]


async def test_a_new_version_leaves_the_old_one_unchanged(
    templates_stub: Any, tenant: Tenant
) -> None:
    v1 = await create_schema(
        templates_stub, tenant.admin, display_name="Forklift", attributes=[attribute("name")]
    )
    changed = credential_schema_pb2.CredentialSchema(
        display_name="Forklift",
        attributes=[attribute("name", required=True), attribute("level", T.ATTRIBUTE_TYPE_INTEGER)],
        requires_certificate=True,
    )
    request = pb.CreateCredentialSchemaVersionRequest(
        name=v1.name, schema=changed, request_id="v2-req"
    )
    v2 = await templates_stub.CreateCredentialSchemaVersion(request, metadata=tenant.admin)
    assert (v2.name, v2.version, v2.latest_version) == (v1.name, 2, 2)
    assert [a.name for a in v2.attributes] == ["name", "level"]
    assert v2.requires_certificate
    retried = await templates_stub.CreateCredentialSchemaVersion(request, metadata=tenant.admin)
    assert retried == v2

    old = await templates_stub.GetCredentialSchema(
        pb.GetCredentialSchemaRequest(name=f"{v1.name}@1"), metadata=tenant.issuer
    )
    assert (old.version, old.latest_version) == (1, 2)
    assert [a.name for a in old.attributes] == ["name"]
    assert not old.requires_certificate
    latest = await templates_stub.GetCredentialSchema(
        pb.GetCredentialSchemaRequest(name=v1.name), metadata=tenant.issuer
    )
    assert latest.version == 2
    listed = await templates_stub.ListCredentialSchemas(
        pb.ListCredentialSchemasRequest(), metadata=tenant.observer
    )
    assert [(s.name, s.version) for s in listed.schemas] == [(v1.name, 2)]


async def test_version_refusals(templates_stub: Any, tenant: Tenant, other_tenant: Tenant) -> None:
    v1 = await create_schema(templates_stub, tenant.admin, attributes=[attribute("name")])
    renamed = credential_schema_pb2.CredentialSchema(
        display_name="Another name", attributes=[attribute("name")]
    )
    details = await fails(
        templates_stub.CreateCredentialSchemaVersion(
            pb.CreateCredentialSchemaVersionRequest(name=v1.name, schema=renamed),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields == ["schema.display_name"]
    same = credential_schema_pb2.CredentialSchema(attributes=[attribute("email")])
    details = await fails(
        templates_stub.CreateCredentialSchemaVersion(
            pb.CreateCredentialSchemaVersionRequest(name=v1.name, schema=same),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields == ["schema.attributes[0].name"]
    ok = credential_schema_pb2.CredentialSchema(attributes=[attribute("name")])
    for metadata in (other_tenant.admin,):
        await fails(
            templates_stub.CreateCredentialSchemaVersion(
                pb.CreateCredentialSchemaVersionRequest(name=v1.name, schema=ok),
                metadata=metadata,
            ),
            grpc.StatusCode.NOT_FOUND,
        )
    await fails(
        templates_stub.CreateCredentialSchemaVersion(
            pb.CreateCredentialSchemaVersionRequest(name=v1.name, schema=ok),
            metadata=tenant.issuer,
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    details = await fails(
        templates_stub.CreateCredentialSchemaVersion(
            pb.CreateCredentialSchemaVersionRequest(name=f"{v1.name}@1", schema=ok),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields == ["name"]


async def test_another_tenants_schema_is_not_found(
    templates_stub: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    created = await create_schema(templates_stub, tenant.admin)
    for name in (created.name, f"{created.name}@1"):
        details = await fails(
            templates_stub.GetCredentialSchema(
                pb.GetCredentialSchemaRequest(name=name), metadata=other_tenant.admin
            ),
            grpc.StatusCode.NOT_FOUND,
        )
        assert details.info.reason == "SCHEMA_NOT_FOUND"
    listed = await templates_stub.ListCredentialSchemas(
        pb.ListCredentialSchemasRequest(), metadata=other_tenant.observer
    )
    assert created.name not in [s.name for s in listed.schemas]


@pytest.mark.parametrize("name", ["", "schemas/not-a-uuid", "schema/x", "schemas/{}@0", "x"])
async def test_malformed_names_are_invalid(templates_stub: Any, tenant: Tenant, name: str) -> None:
    details = await fails(
        templates_stub.GetCredentialSchema(
            pb.GetCredentialSchemaRequest(name=name.format(uuid.uuid4())), metadata=tenant.admin
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields == ["name"]


async def test_unknown_schema_or_version_is_not_found(templates_stub: Any, tenant: Tenant) -> None:
    created = await create_schema(templates_stub, tenant.admin)
    for name in (f"schemas/{uuid.uuid4()}", f"{created.name}@2"):
        await fails(
            templates_stub.GetCredentialSchema(
                pb.GetCredentialSchemaRequest(name=name), metadata=tenant.admin
            ),
            grpc.StatusCode.NOT_FOUND,
        )


async def test_lists_page_with_opaque_tokens(templates_stub: Any, tenant: Tenant) -> None:
    names = [(await create_schema(templates_stub, tenant.admin)).name for _ in range(5)]
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await templates_stub.ListCredentialSchemas(
            pb.ListCredentialSchemasRequest(page_size=2, page_token=token), metadata=tenant.observer
        )
        seen.extend(s.name for s in page.schemas)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(names))
    assert pages == 3
    details = await fails(
        templates_stub.ListCredentialSchemas(
            pb.ListCredentialSchemasRequest(page_token="garbage"), metadata=tenant.admin
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields == ["page_token"]
    details = await fails(
        templates_stub.ListCredentialSchemas(
            pb.ListCredentialSchemasRequest(page_size=-1), metadata=tenant.admin
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields == ["page_size"]
