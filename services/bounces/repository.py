"""Recording a bounce or receipt on its record, as the public endpoints' role.

The role reads no table: ``public_email_delivery`` (SECURITY DEFINER) changes exactly the
email delivery columns of the one record named, whose VERP MAC the caller checked.
"""

from __future__ import annotations

import uuid
from typing import Literal

import asyncpg

from credbatch.delivery.dsn import Report

Outcome = Literal["recorded", "unchanged", "unknown"]

_RECORD = "SELECT public_email_delivery($1, $2, $3, $4)"


async def record_email_report(pool: asyncpg.Pool, record_id: uuid.UUID, report: Report) -> Outcome:
    """Record ``report`` on the record's email channel; what became of it."""
    async with pool.acquire() as conn:
        outcome: Outcome = await conn.fetchval(
            _RECORD, record_id, report.state.value, report.code, report.diagnostic
        )
    return outcome
