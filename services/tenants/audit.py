"""ListAuditEvents in domain terms: the caller tenant's audit trail, newest first.

One read-only tenant transaction per page, so row-level security alone decides whose entries
are seen: another tenant's entries are never visible, by filter, by id or by page token (a
token is a position, not a grant). Keyset paging on (occurred_at, id) along
``audit_events_list_idx``: entries appended while a client pages land before its position
and never shift the pages it has not read. Role checks (org admins and services only) happen
at the edge (``credbatch.auth.rules``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from credbatch.audit import ActorKind
from credbatch.paging import PagePosition, decode_token, next_page_token, page_size
from credbatch.tenancy import TenantScope, tenant_transaction
from services.tenants.audit_filter import AuditFilter, parse_filter

LIST_NAME = "ListAuditEvents"
_COMPARATORS = frozenset({"<", "<=", ">", ">="})
_SELECT = """
SELECT id, occurred_at, actor, actor_kind, action, resource, outcome, request_id, trace_id,
       details
FROM audit_events
"""


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the trail, as stored."""

    id: uuid.UUID
    occurred_at: datetime
    actor: str
    actor_kind: ActorKind
    action: str
    resource: str
    outcome: str
    request_id: str
    trace_id: str
    details: dict[str, Any]


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_page_token: str


def _where(audit_filter: AuditFilter, args: list[Any]) -> list[str]:
    def param(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    # Each condition its own predicate, as for ListBatches.
    where = ["tenant_id = app_tenant()"]
    where += [f"actor = {param(actor)}" for actor in audit_filter.actors]
    where += [f"action = {param(action.value)}" for action in audit_filter.actions]
    where += [f"resource = {param(resource)}" for resource in audit_filter.resources]
    where += [f"outcome = {param(outcome)}" for outcome in audit_filter.outcomes]
    for bound in audit_filter.occur_time:
        if bound.op not in _COMPARATORS:
            raise ValueError(f"unsupported occur_time comparator {bound.op!r}")
        where.append(f"occurred_at {bound.op} {param(bound.at)}")
    return where


async def list_entries(
    conn: asyncpg.Connection, audit_filter: AuditFilter, after: PagePosition | None, limit: int
) -> list[AuditEntry]:
    """Entries of the transaction's tenant matching the filter, newest first, after ``after``."""
    args: list[Any] = []
    where = _where(audit_filter, args)
    if after is not None:
        args.extend((after.create_time, after.id))
        where.append(f"(occurred_at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    sql = (
        _SELECT
        + "WHERE "
        + " AND ".join(where)
        + f" ORDER BY occurred_at DESC, id DESC LIMIT ${len(args)}"
    )
    return [
        AuditEntry(
            id=row["id"],
            occurred_at=row["occurred_at"],
            actor=row["actor"],
            actor_kind=ActorKind(row["actor_kind"]),
            action=row["action"],
            resource=row["resource"],
            outcome=row["outcome"],
            request_id=row["request_id"],
            trace_id=row["trace_id"],
            details=dict(row["details"]),
        )
        for row in await conn.fetch(sql, *args)
    ]


class AuditTrail:
    """The caller tenant's audit trail."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def list(self, scope: TenantScope, filter_text: str, size: int, token: str) -> AuditPage:
        """One page; INVALID_ARGUMENT naming ``filter``, ``page_size`` or ``page_token``."""
        audit_filter = parse_filter(filter_text)
        limit = page_size(size)
        after = decode_token(LIST_NAME, token, filter_text)
        async with tenant_transaction(self._pool, scope, readonly=True) as conn:
            found = await list_entries(conn, audit_filter, after, limit + 1)
        positions = [PagePosition(e.occurred_at, e.id) for e in found]
        return AuditPage(found[:limit], next_page_token(LIST_NAME, positions, limit, filter_text))
