"""`credbatch report BATCH -o FILE [--state failed]`: the per-record CSV report."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import cast

import click
import grpc

from credbatch.cli.client import (
    address_option,
    channel,
    describe,
    resolve,
    resource_name,
    token_option,
)
from credbatch.cli.output import note, out
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2, batches_service_pb2_grpc

STATES: dict[str, batch_pb2.RecordState] = {
    name.removeprefix("RECORD_STATE_").lower(): cast(
        batch_pb2.RecordState, batch_pb2.RecordState.Value(name)
    )
    for name, _ in batch_pb2.RecordState.items()
    if name != "RECORD_STATE_UNSPECIFIED"
}


def download(
    stub: batches_service_pb2_grpc.BatchStatusServiceStub,
    name: str,
    states: list[batch_pb2.RecordState],
    metadata: tuple[tuple[str, str], ...],
    path: Path,
) -> tuple[int, int]:
    """Stream the report into `path`; returns (bytes, data rows)."""
    size = 0
    with path.open("wb") as handle:
        for part in stub.DownloadBatchReport(
            batches_service_pb2.DownloadBatchReportRequest(name=name, states=states),
            metadata=metadata,
        ):
            handle.write(part.chunk)
            size += len(part.chunk)
    # Counted with the csv module: quoted cells (error messages) may hold line breaks.
    with path.open(newline="", encoding="utf-8") as handle:
        rows = sum(1 for _ in csv.reader(handle))
    return size, max(0, rows - 1)


@click.command()
@click.argument("batch")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the CSV report.",
)
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(sorted(STATES), case_sensitive=False),
    help="Only records in this state; repeat for several.",
)
@token_option
@address_option("batches")
def report(
    batch: str, output: Path, states: tuple[str, ...], token: str | None, batches_addr: str
) -> None:
    """Download the per-record report of BATCH as CSV."""
    name = resource_name("batches", batch)
    endpoint = resolve("batches", token, batches_addr)
    wanted = [STATES[s.lower()] for s in states]
    with channel(endpoint) as chan:
        stub = batches_service_pb2_grpc.BatchStatusServiceStub(chan)
        try:
            size, rows = download(stub, name, wanted, endpoint.metadata, output)
        except grpc.RpcError as error:
            output.unlink(missing_ok=True)
            raise describe(error, endpoint) from None
    note(f"wrote {rows:,} record(s), {size:,} bytes")
    out.print(str(output))
