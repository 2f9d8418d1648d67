"""`credbatch limits show|set`: a tenant's sending limits, as the database owner.

Run with the owner's CREDBATCH_DATABASE_URL (the migration role), like `keys rewrap`: the
application role may only read its own tenant's limits. `set` changes only the limits it
names (`unlimited` clears one) and records the change in the tenant's audit trail in the same
transaction. The relay and the upload quota read the new limits on their next pass.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import click

from credbatch.cli.client import EXIT_INVALID, CliError
from credbatch.cli.output import note, table
from credbatch.config import ConfigError, load_settings
from credbatch.tenants.limits import UNLIMITED, Change, Limits, get_limits, set_limits

R = TypeVar("R")


@click.group()
def limits() -> None:
    """A tenant's sending limits (as the database owner)."""


def _tenant(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value.removeprefix("tenants/"))
    except ValueError:
        raise CliError(f"TENANT must be a tenant id (a UUID), got {value!r}") from None


def _number(name: str, text: str | None, kind: type[float] | type[int]) -> float | int | None:
    if text is None or text == UNLIMITED:
        return None
    try:
        return kind(text)
    except ValueError:
        raise CliError(f"--{name.replace('_', '-')} must be a number or {UNLIMITED}") from None


def _run(work: Callable[[asyncpg.Connection], Awaitable[R]]) -> R:
    async def main() -> R:
        conn = await asyncpg.connect(load_settings().database_url)
        try:
            return await work(conn)
        finally:
            await conn.close()

    try:
        return asyncio.run(main())
    except ConfigError as error:
        raise CliError(str(error)) from None
    except (OSError, asyncpg.PostgresError) as error:
        raise CliError(f"database: {error}") from None


def _show(tenant: uuid.UUID, found: Limits | None) -> None:
    if found is None:
        note(f"tenant {tenant} has no limits of its own: the CREDBATCH_DEFAULT_* settings apply")
        return

    def shown(value: float | None) -> str:
        return UNLIMITED if value is None else f"{value:g}"

    table(
        f"limits of tenant {tenant}",
        ["limit", "value"],
        [
            ["emails_per_second", shown(found.emails_per_second)],
            ["sms_per_second", shown(found.sms_per_second)],
            ["max_open_records", shown(found.max_open_records)],
            ["dispatch_weight", shown(found.dispatch_weight)],
        ],
    )


@limits.command("show")
@click.argument("tenant")
def show(tenant: str) -> None:
    """Show TENANT's limits."""
    tenant_id = _tenant(tenant)
    _show(tenant_id, _run(lambda conn: get_limits(conn, tenant_id)))


@limits.command("set")
@click.argument("tenant")
@click.option("--emails-per-second", help=f"Email records dispatched per second, or {UNLIMITED}.")
@click.option("--sms-per-second", help=f"SMS records dispatched per second, or {UNLIMITED}.")
@click.option("--max-open-records", help=f"Records PENDING + QUEUED at most, or {UNLIMITED}.")
@click.option("--dispatch-weight", type=float, help="Share against other busy tenants (1).")
def set_(
    tenant: str,
    emails_per_second: str | None,
    sms_per_second: str | None,
    max_open_records: str | None,
    dispatch_weight: float | None,
) -> None:
    """Set the named limits of TENANT (the others keep their value); audited."""
    tenant_id = _tenant(tenant)
    change: Change = {}
    for name, text, kind in (
        ("emails_per_second", emails_per_second, float),
        ("sms_per_second", sms_per_second, float),
        ("max_open_records", max_open_records, int),
    ):
        if text is not None:
            change[name] = _number(name, text, kind)
    if dispatch_weight is not None:
        change["dispatch_weight"] = dispatch_weight
    if not change:
        raise CliError("name at least one limit to set (see --help)")
    try:
        updated = _run(lambda conn: set_limits(conn, tenant_id, change))
    except ValueError as error:
        raise CliError(str(error), EXIT_INVALID) from None
    _show(tenant_id, updated)
