"""How the CLI shows one batch: its state label, counts per record state and a summary table.

Shared by every command that answers with a batch (status, cancel, retry).
"""

from __future__ import annotations

from credbatch.cli.output import enum_label, table, timestamp
from credbatch.gen.batches.v1 import batch_pb2

TERMINAL = frozenset(
    {
        batch_pb2.BATCH_STATE_COMPLETED,
        batch_pb2.BATCH_STATE_COMPLETED_WITH_ERRORS,
        batch_pb2.BATCH_STATE_CANCELLED,
        batch_pb2.BATCH_STATE_FAILED,
    }
)
COUNT_FIELDS = (
    "pending",
    "queued",
    "issued",
    "invited",
    "failed",
    "cancelled",
    "claimed",
    "revoked",
    "expired",
    # Across the states above: invitations confirmed delivered, and bounced or failed.
    "delivered",
    "bounced",
)


def state_label(state: batch_pb2.BatchState) -> str:
    return enum_label(batch_pb2.BatchState.Name(state), "BATCH_STATE_")


def counts_text(batch: batch_pb2.Batch) -> str:
    """The non-zero counts, e.g. `queued=3 invited=17`."""
    c = batch.record_counts
    return " ".join(f"{field}={getattr(c, field):,}" for field in COUNT_FIELDS if getattr(c, field))


def summary(batch: batch_pb2.Batch) -> None:
    """The batch as a field/value table on stdout."""
    table(
        batch.name,
        ["field", "value"],
        [
            ["state", state_label(batch.state)],
            ["file", batch.filename],
            ["schema", f"{batch.schema} v{batch.schema_version}"],
            ["creator", batch.creator],
            ["department", batch.department],
            ["records", f"{batch.total_records:,}"],
            ["done", f"{batch.percent_done:.1f} %"],
            *([field, f"{getattr(batch.record_counts, field):,}"] for field in COUNT_FIELDS),
            ["reminder days", ",".join(str(d) for d in batch.reminder_days) or "none"],
            ["reminders sent", f"{batch.reminders_sent:,}"],
            ["created", timestamp(batch.create_time)],
            ["updated", timestamp(batch.update_time)],
            ["completed", timestamp(batch.complete_time)],
            ["estimated completion", timestamp(batch.estimated_complete_time)],
        ],
    )
