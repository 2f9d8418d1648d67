"""ResendInvitations input rules and its refusals, free of protos (mapping.py reads the message)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from credbatch.batches.resend import ReusedRequest, UnknownRecords
from credbatch.db.idempotency import request_id_violation
from credbatch.errors import FieldViolation, InvalidArgument, NotFound

# The ids are locked and resent in one transaction.
MAX_IDS = 10_000
# How many refused ids an error names; the rest are counted.
NAMED_IN_ERROR = 20


@dataclass(frozen=True)
class ResendRequest:
    """Whose invitations to send again: ``ids`` of records (None: every INVITED record)."""

    batch_id: uuid.UUID
    ids: tuple[uuid.UUID, ...] | None
    request_id: str


def resend_request(batch_id: uuid.UUID, ids: Sequence[str], request_id: str) -> ResendRequest:
    """The request, or INVALID_ARGUMENT naming each field that breaks a rule."""
    violations: list[FieldViolation] = []
    if len(ids) > MAX_IDS:
        violations.append(
            FieldViolation("record_ids", f"at most {MAX_IDS} ids per call", "TOO_MANY_IDS")
        )
    parsed: list[uuid.UUID] = []
    for index, value in enumerate(ids[:MAX_IDS]):
        try:
            parsed.append(uuid.UUID(value))
        except ValueError:
            violations.append(
                FieldViolation(f"record_ids[{index}]", f"{value!r} is not a UUID", "INVALID_ID")
            )
    violation = request_id_violation(request_id)
    if violation is not None:
        violations.append(violation)
    if violations:
        raise InvalidArgument(
            "invalid ResendInvitations request: "
            + "; ".join(f"{v.field}: {v.description}" for v in violations[:NAMED_IN_ERROR]),
            reason=violations[0].reason,
            violations=violations[:NAMED_IN_ERROR],
        )
    # A repeated id is the same record: resending it once is what was asked.
    return ResendRequest(batch_id, tuple(dict.fromkeys(parsed)) if parsed else None, request_id)


def records_not_found(batch_id: uuid.UUID, unknown: UnknownRecords) -> NotFound:
    """NOT_FOUND naming the ids that are no record of the batch the caller can see.

    Another tenant's record reads exactly as one that does not exist.
    """
    shown = [str(i) for i in unknown.ids[:NAMED_IN_ERROR]]
    more = len(unknown.ids) - len(shown)
    message = f"no record {', '.join(shown)} in batches/{batch_id}"
    if more:
        message += f"; and {more} more"
    return NotFound(message, reason="RECORD_NOT_FOUND", metadata={"resource": "record"})


def request_reused(reused: ReusedRequest) -> InvalidArgument:
    # The other batch is not named: the caller may not be allowed to see it.
    description = "already used for another batch"
    return InvalidArgument(
        f"request_id is {description}",
        reason="REQUEST_ID_REUSED",
        violations=[FieldViolation("request_id", description, "REQUEST_ID_REUSED")],
    )
