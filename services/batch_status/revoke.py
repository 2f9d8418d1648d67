"""RevokeRecords input rules and its refusal, free of protos (mapping.py reads the message)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from credbatch.batches.revocation import Unrevocable
from credbatch.errors import FieldViolation, InvalidArgument

# Bounds of one request: the ids are locked and checked in one transaction, and the reason is
# stored with every record.
MAX_IDS = 10_000
MAX_REASON = 500
# How many refused ids an error names; the rest are counted.
NAMED_IN_ERROR = 20


@dataclass(frozen=True)
class RevokeRequest:
    """What to revoke: ``ids`` of records or their credentials (none: every issued record)."""

    batch_id: uuid.UUID
    ids: tuple[uuid.UUID, ...]
    reason: str


def revoke_request(batch_id: uuid.UUID, ids: Sequence[str], reason: str) -> RevokeRequest:
    """The request, or INVALID_ARGUMENT naming each field that breaks a rule."""
    violations: list[FieldViolation] = []
    reason = reason.strip()
    if not reason:
        violations.append(FieldViolation("reason", "a reason is required", "REQUIRED"))
    elif len(reason) > MAX_REASON:
        violations.append(
            FieldViolation("reason", f"at most {MAX_REASON} characters", "REASON_TOO_LONG")
        )
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
    if violations:
        raise InvalidArgument(
            "invalid RevokeRecords request: "
            + "; ".join(f"{v.field}: {v.description}" for v in violations[:NAMED_IN_ERROR]),
            reason=violations[0].reason,
            violations=violations[:NAMED_IN_ERROR],
        )
    # A repeated id is the same record: revoking it once is what was asked.
    return RevokeRequest(batch_id, tuple(dict.fromkeys(parsed)), reason)


def refused(unrevocable: Unrevocable) -> InvalidArgument:
    """INVALID_ARGUMENT naming the ids that cannot be revoked (nothing was revoked)."""
    violations = [
        FieldViolation("record_ids", f"{i} is not a record of the batch", "RECORD_NOT_FOUND")
        for i in unrevocable.unknown
    ] + [
        FieldViolation("record_ids", f"{i} has no issued credential", "RECORD_NOT_ISSUED")
        for i in unrevocable.not_issued
    ]
    shown = violations[:NAMED_IN_ERROR]
    more = len(violations) - len(shown)
    message = "cannot revoke: " + "; ".join(v.description for v in shown)
    if more:
        message += f"; and {more} more"
    return InvalidArgument(message, reason=shown[0].reason, violations=shown)
