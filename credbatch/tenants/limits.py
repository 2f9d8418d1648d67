"""A tenant's sending limits (``tenant_limits``), set by an operator as the owner, audited.

The application role only reads its own tenant's row; the owner writes it (the table's
grants), so setting limits is an operator's command (``credbatch limits set``), not an RPC.
Each change is one transaction: the row and the tenant's audit entry (system actor
``LIMITS_ACTOR``, the names and new values of the limits set) commit together.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields

import asyncpg

from credbatch import audit

LIMITS_ACTOR = "cli:limits-set"
UNLIMITED = "unlimited"


@dataclass(frozen=True)
class Limits:
    """A tenant's limits; None is unlimited (or, for dispatch_weight, the default of 1)."""

    emails_per_second: float | None = None
    sms_per_second: float | None = None
    max_open_records: int | None = None
    dispatch_weight: float = 1.0


# A change names the limits to set; a value of None clears one (unlimited).
Change = dict[str, float | int | None]


def _check(change: Change) -> None:
    known = {f.name for f in fields(Limits)}
    for name, value in change.items():
        if name not in known:
            raise ValueError(f"unknown limit {name!r}; one of {', '.join(sorted(known))}")
        if name == "dispatch_weight" and (value is None or value <= 0):
            raise ValueError("dispatch_weight must be more than 0")
        if name == "max_open_records" and value is not None and value < 0:
            raise ValueError("max_open_records must be 0 or more")
        if name.endswith("_per_second") and value is not None and value <= 0:
            raise ValueError(f"{name} must be more than 0 (or unlimited)")


async def get_limits(owner: asyncpg.Connection, tenant_id: uuid.UUID) -> Limits | None:
    """The tenant's row, or None when it has none (the configured defaults apply)."""
    row = await owner.fetchrow(
        "SELECT emails_per_second, sms_per_second, max_open_records, dispatch_weight"
        " FROM tenant_limits WHERE tenant_id = $1",
        tenant_id,
    )
    return None if row is None else Limits(**dict(row))


async def set_limits(owner: asyncpg.Connection, tenant_id: uuid.UUID, change: Change) -> Limits:
    """Set the limits named in ``change`` (others keep their value) and audit it.

    Raises:
        ValueError: an unknown limit, or a value out of its range (nothing changes).
    """
    if not change:
        raise ValueError("name at least one limit to set")
    _check(change)
    async with owner.transaction():
        await owner.execute(
            "INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING", tenant_id
        )
        current = await get_limits(owner, tenant_id) or Limits()
        merged = Limits(**{**current.__dict__, **change})
        await owner.execute(
            """
            INSERT INTO tenant_limits AS l (tenant_id, emails_per_second, sms_per_second,
                                            max_open_records, dispatch_weight)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (tenant_id) DO UPDATE
            SET emails_per_second = excluded.emails_per_second,
                sms_per_second = excluded.sms_per_second,
                max_open_records = excluded.max_open_records,
                dispatch_weight = excluded.dispatch_weight,
                updated_at = now()
            """,
            tenant_id,
            merged.emails_per_second,
            merged.sms_per_second,
            merged.max_open_records,
            merged.dispatch_weight,
        )
        await audit.record(
            owner,
            audit.Actor.system(tenant_id, LIMITS_ACTOR),
            audit.Action.TENANT_LIMITS_UPDATE,
            "tenantLimits",
            details={
                "fields": sorted(change),
                **{name: UNLIMITED if value is None else value for name, value in change.items()},
            },
        )
    return merged
