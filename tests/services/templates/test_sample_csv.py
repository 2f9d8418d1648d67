"""GetSampleCsv on a real server: the file passes the shared column and value rules as is."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import grpc
import pytest

from credbatch.gen.common.v1 import medium_pb2
from credbatch.gen.templates.v1 import credential_schema_pb2, templates_service_pb2
from credbatch.schema.columns import match_header
from credbatch.schema.model import Attribute, AttributeType, Medium, SchemaVersion
from credbatch.schema.values import compile_row_validator
from tests.fixtures.grpc import fails
from tests.fixtures.templates import Tenant, attribute, create_schema

pb = templates_service_pb2
MEDIUMS = {
    "EMAIL": [medium_pb2.MEDIUM_EMAIL],
    "SMS": [medium_pb2.MEDIUM_SMS],
    "both": [medium_pb2.MEDIUM_SMS, medium_pb2.MEDIUM_EMAIL],
}


def _domain(schema: credential_schema_pb2.CredentialSchema) -> SchemaVersion:
    """The schema as the upload validator sees it, built from the RPC's answer."""
    return SchemaVersion(
        uuid.UUID(schema.name.removeprefix("schemas/")),
        schema.version,
        schema.display_name,
        tuple(
            Attribute(
                a.name,
                AttributeType(credential_schema_pb2.AttributeType.Name(a.type).split("_")[-1]),
                a.required,
                a.description,
                tuple(a.enum_values),
            )
            for a in schema.attributes
        ),
    )


@pytest.mark.parametrize("combination", MEDIUMS)
async def test_the_sample_passes_the_shared_rules_unchanged(
    templates_stub: Any, tenant: Tenant, combination: str
) -> None:
    schema = await create_schema(templates_stub, tenant.admin, display_name="Every Type: 2026!")
    sample = await templates_stub.GetSampleCsv(
        pb.GetSampleCsvRequest(schema=schema.name, mediums=MEDIUMS[combination]),
        metadata=tenant.issuer,
    )
    assert sample.filename == "every-type-2026-v1.csv"
    rows = list(csv.reader(io.StringIO(sample.content.decode("utf-8"), newline="")))
    assert len(rows) == 2
    header, example = rows
    expected_start = {"EMAIL": ["email"], "SMS": ["phone"], "both": ["email", "phone"]}
    assert header == [*expected_start[combination], *(a.name for a in schema.attributes)]
    assert "Cred_URL" not in header
    assert [c.name for c in sample.columns] == header
    assert [c.example for c in sample.columns] == example

    mediums = {"EMAIL": [Medium.EMAIL], "SMS": [Medium.SMS], "both": [Medium.EMAIL, Medium.SMS]}
    domain = _domain(schema)
    match = match_header(header, domain, mediums[combination])
    assert match.ok, match.problems
    validator = compile_row_validator(domain, mediums[combination]).with_positions(match.positions)
    result = validator.validate(example)
    assert result.errors == []
    assert set(result.values) == set(header)  # every column, the optional one included
    required = {c.name: c.required for c in sample.columns}
    assert required["nickname"] is False and required["given_name"] is True
    assert all(required[name] for name in expected_start[combination])
    assert "optional" in sample.columns[-1].description


async def test_a_versioned_name_gives_that_versions_columns(
    templates_stub: Any, tenant: Tenant
) -> None:
    v1 = await create_schema(templates_stub, tenant.admin, attributes=[attribute("a")])
    await templates_stub.CreateCredentialSchemaVersion(
        pb.CreateCredentialSchemaVersionRequest(
            name=v1.name,
            schema=credential_schema_pb2.CredentialSchema(attributes=[attribute("b")]),
        ),
        metadata=tenant.admin,
    )
    old = await templates_stub.GetSampleCsv(
        pb.GetSampleCsvRequest(schema=f"{v1.name}@1", mediums=MEDIUMS["EMAIL"]),
        metadata=tenant.observer,
    )
    new = await templates_stub.GetSampleCsv(
        pb.GetSampleCsvRequest(schema=v1.name, mediums=MEDIUMS["EMAIL"]), metadata=tenant.observer
    )
    assert [c.name for c in old.columns] == ["email", "a"]
    assert [c.name for c in new.columns] == ["email", "b"]
    assert old.filename.endswith("-v1.csv") and new.filename.endswith("-v2.csv")


async def test_sample_csv_refusals(
    templates_stub: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    schema = await create_schema(templates_stub, tenant.admin)
    details = await fails(
        templates_stub.GetSampleCsv(
            pb.GetSampleCsvRequest(schema=schema.name), metadata=tenant.admin
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields == ["mediums"]
    details = await fails(
        templates_stub.GetSampleCsv(
            pb.GetSampleCsvRequest(schema=schema.name, mediums=[medium_pb2.MEDIUM_UNSPECIFIED]),
            metadata=tenant.admin,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields == ["mediums[0]"]
    details = await fails(
        templates_stub.GetSampleCsv(
            pb.GetSampleCsvRequest(schema="nope", mediums=MEDIUMS["SMS"]), metadata=tenant.admin
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields == ["schema"]
    for metadata, name in (
        (tenant.admin, f"schemas/{uuid.uuid4()}"),
        (other_tenant.admin, schema.name),
    ):
        await fails(
            templates_stub.GetSampleCsv(
                pb.GetSampleCsvRequest(schema=name, mediums=MEDIUMS["SMS"]), metadata=metadata
            ),
            grpc.StatusCode.NOT_FOUND,
        )
