"""`credbatch status BATCH [--watch]`: progress with counts per state and an ETA."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import click
import grpc
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from credbatch.cli.batch_view import TERMINAL, counts_text, state_label, summary
from credbatch.cli.client import (
    EXIT_ERROR,
    CliError,
    address_option,
    channel,
    describe,
    resolve,
    resource_name,
    rpc_errors,
    token_option,
)
from credbatch.cli.output import err, out
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2, batches_service_pb2_grpc

# Reopen a watch that ended early (a restarted service) this many times in a row.
WATCH_REOPENS = 5


def done_records(batch: batch_pb2.Batch) -> int:
    c = batch.record_counts
    return c.invited + c.failed + c.cancelled + c.claimed


def eta_text(batch: batch_pb2.Batch) -> str:
    if batch.state in TERMINAL:
        return ""
    estimate = batch.estimated_complete_time
    if not estimate.seconds:
        return "ETA —"
    left = estimate.seconds - time.time()
    return f"ETA {max(0, int(left)) // 60}:{max(0, int(left)) % 60:02d}"


def follow(
    stub: batches_service_pb2_grpc.BatchStatusServiceStub,
    name: str,
    metadata: tuple[tuple[str, str], ...],
    on_update: Callable[[batch_pb2.Batch], None],
) -> batch_pb2.Batch:
    """Watch a batch until it is terminal; returns its last state."""
    last: batch_pb2.Batch | None = None
    reopens = 0
    while True:
        for batch in stub.WatchBatch(
            batches_service_pb2.WatchBatchRequest(name=name), metadata=metadata
        ):
            last = batch
            reopens = 0
            on_update(batch)
        if last is not None and last.state in TERMINAL:
            return last
        reopens += 1
        if reopens > WATCH_REOPENS:
            raise CliError(f"the watch of {name} kept ending before the batch was done")
        time.sleep(min(2.0**reopens, 10.0))


def watch_with_progress(
    stub: batches_service_pb2_grpc.BatchStatusServiceStub,
    name: str,
    metadata: tuple[tuple[str, str], ...],
) -> batch_pb2.Batch:
    """A live bar (done / total) with counts per state and the service's ETA."""
    with Progress(
        TextColumn("[bold]{task.fields[state]}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[done]}"),
        TextColumn("{task.fields[counts]}"),
        TextColumn("{task.fields[eta]}"),
        TimeElapsedColumn(),
        console=err,
    ) as progress:
        task = progress.add_task(name, total=None, state="…", done="", counts="", eta="")

        def update(batch: batch_pb2.Batch) -> None:
            progress.update(
                task,
                total=max(batch.total_records, 1),
                completed=done_records(batch),
                done=f"{done_records(batch):,}/{batch.total_records:,}",
                state=state_label(batch.state),
                counts=counts_text(batch),
                eta=eta_text(batch),
            )

        return follow(stub, name, metadata, update)


@click.command()
@click.argument("batch")
@click.option("--watch", is_flag=True, help="Follow the batch live until it is done.")
@token_option
@address_option("batches")
def status(batch: str, watch: bool, token: str | None, batches_addr: str) -> None:
    """Show the progress of BATCH (batches/ID or ID)."""
    name = resource_name("batches", batch)
    endpoint = resolve("batches", token, batches_addr)
    with channel(endpoint) as chan:
        stub = batches_service_pb2_grpc.BatchStatusServiceStub(chan)
        if not watch:
            with rpc_errors(endpoint):
                found = stub.GetBatch(
                    batches_service_pb2.GetBatchRequest(name=name),
                    metadata=endpoint.metadata,
                    timeout=30,
                )
            summary(found)
            return
        try:
            final = watch_with_progress(stub, name, endpoint.metadata)
        except grpc.RpcError as error:
            raise describe(error, endpoint) from None
    summary(final)
    elapsed = ""
    if final.complete_time.seconds and final.create_time.seconds:
        seconds = final.complete_time.ToDatetime(UTC) - final.create_time.ToDatetime(UTC)
        elapsed = f" in {seconds.total_seconds():.1f} s"
    out.print(
        f"{final.name} {state_label(final.state)}{elapsed} (at {datetime.now(UTC):%H:%M:%S}Z)"
    )
    if final.state == batch_pb2.BATCH_STATE_FAILED:
        raise CliError(f"{final.name} failed", EXIT_ERROR)
