"""`credbatch schemas create FILE` / `schemas list`."""

from __future__ import annotations

import uuid
from pathlib import Path

import click

from credbatch.cli.client import (
    address_option,
    channel,
    resolve,
    rpc_errors,
    token_option,
)
from credbatch.cli.documents import load_document, prefix_enum, to_message
from credbatch.cli.output import enum_label, note, out, table, timestamp
from credbatch.gen.templates.v1 import (
    credential_schema_pb2,
    templates_service_pb2,
    templates_service_pb2_grpc,
)


def schema_from_file(path: Path) -> credential_schema_pb2.CredentialSchema:
    """A CredentialSchema from JSON/YAML; attribute types may omit `ATTRIBUTE_TYPE_`."""
    data = load_document(path)
    for attribute in data.get("attributes") or []:
        if isinstance(attribute, dict) and "type" in attribute:
            attribute["type"] = prefix_enum(attribute["type"], "ATTRIBUTE_TYPE_")
    return to_message(data, credential_schema_pb2.CredentialSchema(), path)


def create_schema(
    stub: templates_service_pb2_grpc.TemplateServiceStub,
    schema: credential_schema_pb2.CredentialSchema,
    metadata: tuple[tuple[str, str], ...],
) -> credential_schema_pb2.CredentialSchema:
    request = templates_service_pb2.CreateCredentialSchemaRequest(
        schema=schema, request_id=str(uuid.uuid4())
    )
    return stub.CreateCredentialSchema(request, metadata=metadata, timeout=30)


def _type_label(value: credential_schema_pb2.AttributeType) -> str:
    name = credential_schema_pb2.AttributeType.Name(value)
    return enum_label(name, "ATTRIBUTE_TYPE_").lower()


@click.group()
def schemas() -> None:
    """Credential schemas."""


@schemas.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@token_option
@address_option("templates")
def create(file: Path, token: str | None, templates_addr: str) -> None:
    """Create a schema from a JSON or YAML FILE."""
    schema = schema_from_file(file)
    endpoint = resolve("templates", token, templates_addr)
    with channel(endpoint) as chan, rpc_errors(endpoint):
        stub = templates_service_pb2_grpc.TemplateServiceStub(chan)
        created = create_schema(stub, schema, endpoint.metadata)
    note(f"created {created.display_name} version {created.version}")
    out.print(created.name)


@schemas.command("list")
@token_option
@address_option("templates")
def list_(token: str | None, templates_addr: str) -> None:
    """List schemas (latest version of each)."""
    endpoint = resolve("templates", token, templates_addr)
    rows: list[list[object]] = []
    with channel(endpoint) as chan, rpc_errors(endpoint):
        stub = templates_service_pb2_grpc.TemplateServiceStub(chan)
        page_token = ""
        while True:
            response = stub.ListCredentialSchemas(
                templates_service_pb2.ListCredentialSchemasRequest(
                    page_size=200, page_token=page_token
                ),
                metadata=endpoint.metadata,
                timeout=30,
            )
            for s in response.schemas:
                attributes = ", ".join(f"{a.name}:{_type_label(a.type)}" for a in s.attributes)
                rows.append(
                    [
                        s.name,
                        s.display_name,
                        s.version,
                        "yes" if s.requires_certificate else "no",
                        attributes,
                        timestamp(s.create_time),
                    ]
                )
            page_token = response.next_page_token
            if not page_token:
                break
    table(
        f"{len(rows)} schema(s)",
        ["name", "display name", "version", "certificate", "attributes", "created"],
        rows,
    )
