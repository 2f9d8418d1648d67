"""ListRecords: a batch's records as typed pages, the report's rows without the CSV.

Pages are keyset pages over (batch, row_number), the records' unique key, so a page costs the
same wherever it starts and rows never repeat or go missing between pages. The page token
holds the last row number, bound to the batch and the filter it was made for.

The ``filter`` is the AIP-160 subset a state list needs: ``state = RECORD_STATE_X`` conditions
joined by ``OR``. Anything else is refused with INVALID_ARGUMENT naming the part that is not
supported.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from credbatch.batches.model import RecordState
from credbatch.errors import FieldViolation, InvalidArgument

FIELD = "filter"
_MAX_LENGTH = 2000
_PREFIX = "RECORD_STATE_"
_CONDITION = re.compile(r"\s*state\s*=\s*([A-Za-z_]+)\s*")
_OR = re.compile(r"OR\b")

_PAGE = """
SELECT r.id, r.row_number, r.state, r.email, r.phone, c.id AS credential_id,
       cert.id AS certificate_id, r.error_code,
       -- As in the report: a revoked record's only message is why it was revoked.
       CASE WHEN r.state = 'REVOKED' THEN r.revoke_reason ELSE r.error_message END
         AS error_message,
       r.created_at, r.updated_at, r.issued_at, r.invited_at, r.claimed_at, r.revoked_at
FROM records r
LEFT JOIN credentials c ON c.tenant_id = r.tenant_id AND c.record_id = r.id
LEFT JOIN certificates cert ON cert.tenant_id = r.tenant_id AND cert.record_id = r.id
WHERE r.tenant_id = app_tenant() AND r.batch_id = $1 AND r.row_number > $2
  AND ($3::text[] IS NULL OR r.state = ANY ($3::text[]))
ORDER BY r.row_number
LIMIT $4
"""


@dataclass(frozen=True)
class RecordView:
    """One record as ListRecords returns it."""

    batch_id: uuid.UUID
    id: uuid.UUID
    row_number: int
    state: RecordState
    email: str | None
    phone: str | None
    credential_id: uuid.UUID | None
    certificate_uri: str | None
    error_code: str | None
    error_message: str | None
    create_time: datetime
    update_time: datetime
    issue_time: datetime | None
    invite_time: datetime | None
    claim_time: datetime | None
    revoke_time: datetime | None


@dataclass(frozen=True)
class RecordPage:
    """One page of records and the row number the next page starts after (None: last page)."""

    records: list[RecordView]
    next_after: int | None


def _invalid(description: str) -> InvalidArgument:
    return InvalidArgument(
        f"invalid filter: {description}",
        reason="INVALID_FILTER",
        violations=[FieldViolation(FIELD, description, "INVALID_FILTER")],
    )


def _state(value: str) -> RecordState:
    try:
        # The bare spelling is accepted as ListBatches' filter accepts it.
        return RecordState(value.upper().removeprefix(_PREFIX))
    except ValueError:
        allowed = ", ".join(_PREFIX + s.value for s in RecordState)
        raise _invalid(f"unknown state {value!r}; use one of {allowed}") from None


def parse_record_filter(text: str) -> frozenset[RecordState]:
    """The states a ListRecords filter selects; empty (every record) for an empty filter."""
    if len(text) > _MAX_LENGTH:
        raise _invalid(f"the filter is longer than {_MAX_LENGTH} characters")
    states: set[RecordState] = set()
    position = 0
    text = text.rstrip()
    while position < len(text):
        if states:
            joined = _OR.match(text, position)
            if joined is None:
                raise _invalid(
                    f"cannot read the filter at character {position + 1}; join conditions with OR"
                )
            position = joined.end()
        condition = _CONDITION.match(text, position)
        if condition is None:
            raise _invalid(
                f"cannot read the filter at character {position + 1}; write "
                "`state = RECORD_STATE_X`, several joined with OR"
            )
        states.add(_state(condition.group(1)))
        position = condition.end()
    return frozenset(states)


def _view(row: asyncpg.Record, batch_id: uuid.UUID, public_url: str) -> RecordView:
    certificate = row["certificate_id"]
    return RecordView(
        batch_id=batch_id,
        id=row["id"],
        row_number=row["row_number"],
        state=RecordState(row["state"]),
        email=row["email"],
        phone=row["phone"],
        credential_id=row["credential_id"],
        certificate_uri=None if certificate is None else f"{public_url}/c/{certificate}",
        error_code=row["error_code"],
        error_message=row["error_message"],
        create_time=row["created_at"],
        update_time=row["updated_at"],
        issue_time=row["issued_at"],
        invite_time=row["invited_at"],
        claim_time=row["claimed_at"],
        revoke_time=row["revoked_at"],
    )


async def fetch_records(
    conn: asyncpg.Connection,
    batch_id: uuid.UUID,
    states: frozenset[RecordState],
    after: int,
    size: int,
    public_url: str,
) -> RecordPage:
    """The records after row ``after`` in row order, at most ``size``.

    The caller has checked, in the same transaction, that the batch is visible: row-level
    security would show an invisible batch as one without records, not as NOT_FOUND.
    """
    wanted = sorted(s.value for s in states) or None
    # One more than asked tells whether a next page exists.
    rows = await conn.fetch(_PAGE, batch_id, after, wanted, size + 1)
    base_url = public_url.rstrip("/")
    views = [_view(row, batch_id, base_url) for row in rows[:size]]
    return RecordPage(views, views[-1].row_number if len(rows) > size else None)
