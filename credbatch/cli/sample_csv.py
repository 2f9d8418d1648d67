"""`credbatch sample-csv SCHEMA --medium email --medium sms -o FILE`."""

from __future__ import annotations

from pathlib import Path

import click

from credbatch.cli.client import (
    address_option,
    channel,
    resolve,
    resource_name,
    rpc_errors,
    token_option,
)
from credbatch.cli.mediums import medium_option, to_mediums
from credbatch.cli.output import note, out, table
from credbatch.gen.common.v1 import medium_pb2
from credbatch.gen.templates.v1 import (
    templates_pb2,
    templates_service_pb2,
    templates_service_pb2_grpc,
)


def fetch_sample(
    stub: templates_service_pb2_grpc.TemplateServiceStub,
    schema: str,
    mediums: list[medium_pb2.Medium],
    metadata: tuple[tuple[str, str], ...],
) -> templates_pb2.SampleCsv:
    return stub.GetSampleCsv(
        templates_service_pb2.GetSampleCsvRequest(
            schema=resource_name("schemas", schema), mediums=mediums
        ),
        metadata=metadata,
        timeout=30,
    )


@click.command("sample-csv")
@click.argument("schema")
@medium_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the CSV (default: the suggested file name).",
)
@token_option
@address_option("templates")
def sample_csv(
    schema: str,
    mediums: tuple[str, ...],
    output: Path | None,
    token: str | None,
    templates_addr: str,
) -> None:
    """Download a sample CSV to fill in for SCHEMA (schemas/ID or ID)."""
    endpoint = resolve("templates", token, templates_addr)
    with channel(endpoint) as chan, rpc_errors(endpoint):
        stub = templates_service_pb2_grpc.TemplateServiceStub(chan)
        sample = fetch_sample(stub, schema, to_mediums(mediums), endpoint.metadata)
    path = output or Path(sample.filename or "sample.csv")
    path.write_bytes(sample.content)
    table(
        None,
        ["column", "required", "description", "example"],
        ([c.name, "yes" if c.required else "", c.description, c.example] for c in sample.columns),
    )
    note(f"wrote {len(sample.columns)} column(s) to {path}")
    out.print(str(path))
