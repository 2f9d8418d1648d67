"""`credbatch batches list|cancel|retry|revoke`: the upload history and the commands on one batch.

Cancel and retry are idempotent on the server: cancelling a batch that already finished and
retrying one without FAILED records change nothing and succeed, so both exit 0 and say so.
Revoking records already revoked changes nothing either, and says how many this call revoked.
"""

from __future__ import annotations

import click
from google.protobuf import field_mask_pb2

from credbatch.cli.batch_view import state_label, summary
from credbatch.cli.client import (
    UNARY_TIMEOUT,
    address_option,
    channel,
    resolve,
    resource_name,
    rpc_errors,
    token_option,
)
from credbatch.cli.output import note, table, timestamp
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2, batches_service_pb2_grpc


@click.group()
def batches() -> None:
    """Batches: the upload history, cancel, retry and revoke."""


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
                timeout=UNARY_TIMEOUT,
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


@batches.command("cancel")
@click.argument("batch")
@token_option
@address_option("batches")
def cancel(batch: str, token: str | None, batches_addr: str) -> None:
    """Cancel the records of BATCH (batches/ID or ID) not yet processed."""
    name = resource_name("batches", batch)
    endpoint = resolve("batches", token, batches_addr)
    with channel(endpoint) as chan, rpc_errors(endpoint):
        stub = batches_service_pb2_grpc.BatchStatusServiceStub(chan)
        found = stub.CancelBatch(
            batches_service_pb2.CancelBatchRequest(name=name),
            metadata=endpoint.metadata,
            timeout=UNARY_TIMEOUT,
        )
    summary(found)
    if found.state == batch_pb2.BATCH_STATE_CANCELLED:
        note(f"{found.name} CANCELLED: {found.record_counts.cancelled:,} record(s) not issued")
    else:
        note(f"nothing to cancel: {found.name} had already ended {state_label(found.state)}")


@batches.command("retry")
@click.argument("batch")
@token_option
@address_option("batches")
def retry(batch: str, token: str | None, batches_addr: str) -> None:
    """Issue the FAILED records of BATCH (batches/ID or ID) again."""
    name = resource_name("batches", batch)
    endpoint = resolve("batches", token, batches_addr)
    with channel(endpoint) as chan, rpc_errors(endpoint):
        stub = batches_service_pb2_grpc.BatchStatusServiceStub(chan)
        # Read first: the answer alone cannot tell "retried" from "nothing failed" (both leave
        # no FAILED record). A record failing between the two calls is retried but not counted.
        before = stub.GetBatch(
            batches_service_pb2.GetBatchRequest(name=name),
            metadata=endpoint.metadata,
            timeout=UNARY_TIMEOUT,
        )
        found = stub.RetryFailedRecords(
            batches_service_pb2.RetryFailedRecordsRequest(name=name),
            metadata=endpoint.metadata,
            timeout=UNARY_TIMEOUT,
        )
    summary(found)
    if before.record_counts.failed:
        note(f"{found.name}: {before.record_counts.failed:,} FAILED record(s) queued again")
    else:
        note(f"nothing to retry: {found.name} has no FAILED records")


@batches.command("revoke")
@click.argument("batch")
@click.option(
    "--record",
    "records",
    multiple=True,
    help="A record id, or its credential id (the report's credential_id); repeatable."
    " Without it, every issued credential of BATCH is revoked.",
)
@click.option("--reason", required=True, help="Why the credentials are revoked (kept with each).")
@token_option
@address_option("batches")
def revoke(
    batch: str, records: tuple[str, ...], reason: str, token: str | None, batches_addr: str
) -> None:
    """Revoke issued credentials of BATCH (batches/ID or ID): verifiers reject them once they
    fetch the status list again."""
    name = resource_name("batches", batch)
    endpoint = resolve("batches", token, batches_addr)
    with channel(endpoint) as chan, rpc_errors(endpoint):
        stub = batches_service_pb2_grpc.BatchStatusServiceStub(chan)
        response = stub.RevokeRecords(
            batches_service_pb2.RevokeRecordsRequest(
                name=name, record_ids=list(records), reason=reason
            ),
            metadata=endpoint.metadata,
            timeout=UNARY_TIMEOUT,
        )
    summary(response.batch)
    if response.revoked_count:
        note(f"{response.batch.name}: {response.revoked_count:,} credential(s) revoked")
    else:
        note(f"nothing to revoke: {response.batch.name} has no such unrevoked credential")


@batches.command("resend")
@click.argument("batch")
@click.option(
    "--record",
    "records",
    multiple=True,
    help="A record id; repeatable. Without it, every INVITED record of BATCH.",
)
@click.option(
    "--request-id",
    default="",
    help="Makes the call safe to repeat: the same id answers the first result, sends nothing.",
)
@token_option
@address_option("batches")
def resend(
    batch: str, records: tuple[str, ...], request_id: str, token: str | None, batches_addr: str
) -> None:
    """Send the invitations of INVITED and EXPIRED records of BATCH (batches/ID or ID) again:
    a wallet batch's holders get a fresh offer (the old one stops working), a claim-page
    batch's the same link, working again for the claim TTL. CLAIMED records are skipped:
    revoke and upload again instead."""
    name = resource_name("batches", batch)
    endpoint = resolve("batches", token, batches_addr)
    with channel(endpoint) as chan, rpc_errors(endpoint):
        stub = batches_service_pb2_grpc.BatchStatusServiceStub(chan)
        response = stub.ResendInvitations(
            batches_service_pb2.ResendInvitationsRequest(
                name=name, record_ids=list(records), request_id=request_id
            ),
            metadata=endpoint.metadata,
            timeout=UNARY_TIMEOUT,
        )
    summary(response.batch)
    note(f"{response.batch.name}: {response.resent_count:,} invitation(s) queued to be sent again")
    skipped = [
        (response.claimed_count, "already CLAIMED"),
        (response.revoked_count, "REVOKED"),
        (response.failed_count, "FAILED (use retry)"),
        (response.cancelled_count, "CANCELLED"),
        (response.in_progress_count, "not invited yet"),
        (response.busy_count, "busy, try again"),
    ]
    for count, why in skipped:
        if count:
            note(f"  skipped {count:,}: {why}")


@batches.command("update-contact")
@click.argument("batch")
@click.argument("record")
@click.option("--email", default=None, help="The record's new email address.")
@click.option("--phone", default=None, help="The record's new phone number (E.164 preferred).")
@token_option
@address_option("batches")
def update_contact(
    batch: str,
    record: str,
    email: str | None,
    phone: str | None,
    token: str | None,
    batches_addr: str,
) -> None:
    """Correct the email and/or phone of RECORD (the report's record_id) of BATCH (batches/ID
    or ID) and send its invitation again: the old claim link and offer stop working (410), the
    same credential is offered at the new contact. Works for INVITED, EXPIRED, FAILED or
    bounced records."""
    if email is None and phone is None:
        raise click.UsageError("give --email, --phone or both")
    name = f"{resource_name('batches', batch)}/records/{record}"
    paths = [field for field, value in (("email", email), ("phone", phone)) if value is not None]
    endpoint = resolve("batches", token, batches_addr)
    with channel(endpoint) as chan, rpc_errors(endpoint):
        stub = batches_service_pb2_grpc.BatchStatusServiceStub(chan)
        response = stub.UpdateRecordContact(
            batches_service_pb2.UpdateRecordContactRequest(
                name=name,
                email=email or "",
                phone=phone or "",
                update_mask=field_mask_pb2.FieldMask(paths=paths),
            ),
            metadata=endpoint.metadata,
            timeout=UNARY_TIMEOUT,
        )
    summary(response.batch)
    changed = ", ".join(response.changed_fields) or "nothing changed"
    note(f"{name}: {changed}; invitation queued to be sent again")
