"""`credbatch batches list`: the upload history the caller's roles may see."""

from __future__ import annotations

import click

from credbatch.cli.client import address_option, channel, resolve, rpc_errors, token_option
from credbatch.cli.output import enum_label, table, timestamp
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2, batches_service_pb2_grpc


def state_label(state: batch_pb2.BatchState) -> str:
    return enum_label(batch_pb2.BatchState.Name(state), "BATCH_STATE_")


@click.group()
def batches() -> None:
    """Batches (upload history)."""


@batches.command("list")
@click.option("--filter", "filter_", default="", help='e.g. state = COMPLETED AND creator = "me"')
@click.option("--limit", default=50, show_default=True, help="How many batches, newest first.")
@token_option
@address_option("batches")
def list_(filter_: str, limit: int, token: str | None, batches_addr: str) -> None:
    """List visible batches, newest first."""
    endpoint = resolve("batches", token, batches_addr)
    found: list[batch_pb2.Batch] = []
    with channel(endpoint) as chan, rpc_errors(endpoint):
        stub = batches_service_pb2_grpc.BatchStatusServiceStub(chan)
        page_token = ""
        while len(found) < limit:
            response = stub.ListBatches(
                batches_service_pb2.ListBatchesRequest(
                    page_size=min(limit - len(found), 1000),
                    page_token=page_token,
                    filter=filter_,
                ),
                metadata=endpoint.metadata,
                timeout=30,
            )
            found.extend(response.batches)
            page_token = response.next_page_token
            if not page_token:
                break
    table(
        f"{len(found)} batch(es)",
        [
            "name",
            "state",
            "file",
            "records",
            "invited",
            "failed",
            "creator",
            "department",
            "created",
        ],
        (
            [
                b.name,
                state_label(b.state),
                b.filename,
                f"{b.total_records:,}",
                f"{b.record_counts.invited:,}",
                f"{b.record_counts.failed:,}",
                b.creator,
                b.department,
                timestamp(b.create_time),
            ]
            for b in found[:limit]
        ),
    )
