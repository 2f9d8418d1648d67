"""The open-records quota of a tenant, checked in the upload's own write transaction.

A tenant may have at most ``max_open_records`` records waiting for dispatch or in flight
(PENDING + QUEUED): its ``tenant_limits`` row, else ``CREDBATCH_DEFAULT_MAX_OPEN_RECORDS``,
else no limit. The check runs after the upload's records are written, so it counts them, and
``tenant_open_records`` holds a per-tenant lock until the transaction ends: two concurrent
uploads are checked one after the other, never both against the count without the other.
A refused upload raises inside the transaction, which rolls back: it creates nothing, its audit
entry (written in the check's statement) included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf.message import Message
from google.rpc import error_details_pb2

from credbatch.batches.repository import batch_view_sql
from credbatch.errors import ResourceExhausted

QUOTA_SUBJECT = "tenant"


class OpenRecordsQuotaExceeded(ResourceExhausted):
    """The upload would leave the tenant over its open-records quota."""

    reason = "OPEN_RECORDS_QUOTA_EXCEEDED"

    def __init__(self, open_records: int, limit: int) -> None:
        super().__init__(
            f"the upload would make {open_records} records open (waiting or in flight) in "
            f"this tenant; the limit is {limit}: retry once earlier batches have progressed",
            metadata={"open_records": str(open_records), "max_open_records": str(limit)},
            # Workers drain open records at hundreds a second: a minute frees a lot of room.
            retry_delay=60.0,
        )
        self.open_records = open_records
        self.limit = limit

    def extra_details(self) -> Sequence[Message]:
        return (
            error_details_pb2.QuotaFailure(
                violations=[
                    error_details_pb2.QuotaFailure.Violation(
                        subject=QUOTA_SUBJECT,
                        description=(
                            f"open records: {self.open_records} with this upload, "
                            f"limit {self.limit}"
                        ),
                    )
                ]
            ),
        )


OPEN_RECORDS_AND_BATCH = (
    "SELECT q.open_records, q.max_open_records, b.*\n"
    "FROM tenant_open_records($1) q\n"
    f"LEFT JOIN LATERAL ({batch_view_sql('$2')}) b ON true"
)
"""The tenant's open records with this transaction's and its limit (``$1`` the default
limit) and, in the same row, the new batch as ``GetBatch`` shows it (``$2`` its id; its view:
``credbatch.batches.repository.batch_view``): the upload's answer read in the quota's round
trip. Run in the upload's tenant transaction after its records are written (it shares its
statement with the audit entry: ``credbatch.audit.record_alongside``)."""


def check_open_records(row: Mapping[str, Any] | None) -> None:
    """Raise OpenRecordsQuotaExceeded when the row of ``OPEN_RECORDS_AND_BATCH`` says the
    tenant is over.

    Raises:
        OpenRecordsQuotaExceeded: the upload would leave the tenant over its quota.
    """
    if row is None or row["max_open_records"] is None:
        return
    if row["open_records"] > row["max_open_records"]:
        raise OpenRecordsQuotaExceeded(row["open_records"], row["max_open_records"])
