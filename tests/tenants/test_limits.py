"""Setting a tenant's limits as the owner: only the named ones change, each change is in the
tenant's audit trail, and `credbatch limits set|show` says what it did."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import asyncpg
import pytest

from credbatch.config import Settings
from credbatch.tenants.limits import Limits, get_limits, set_limits
from tests.fixtures.audit import audit_entries


async def test_set_changes_the_named_limits_and_audits_them(owner_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    async with owner_pool.acquire() as conn:
        assert await get_limits(conn, tenant) is None
        await set_limits(conn, tenant, {"emails_per_second": 5.0, "max_open_records": 1000})
        updated = await set_limits(conn, tenant, {"emails_per_second": None})
        assert updated == Limits(None, None, 1000, 1.0)
        assert await get_limits(conn, tenant) == updated
        with pytest.raises(ValueError, match="dispatch_weight"):
            await set_limits(conn, tenant, {"dispatch_weight": 0})
        with pytest.raises(ValueError, match="unknown limit"):
            await set_limits(conn, tenant, {"colour": 1})
    entries = await audit_entries(owner_pool, tenant)
    assert [(e["actor"], e["actor_kind"], e["action"], e["resource"]) for e in entries] == [
        ("cli:limits-set", "SYSTEM", "tenant_limits.update", "tenantLimits")
    ] * 2
    assert [e["details"] for e in entries] == [
        {
            "fields": ["emails_per_second", "max_open_records"],
            "emails_per_second": 5.0,
            "max_open_records": 1000,
        },
        {"fields": ["emails_per_second"], "emails_per_second": "unlimited"},
    ]


async def _cli(settings: Settings, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "credbatch.cli.main",
        *args,
        env={
            **os.environ,
            "PYTHONPATH": os.getcwd(),
            "CREDBATCH_DATABASE_URL": settings.database_url,
            "COLUMNS": "200",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_limits_command(db_settings: Settings, owner_pool: asyncpg.Pool) -> None:
    tenant = str(uuid.uuid4())
    code, _, err = await _cli(db_settings, "limits", "show", tenant)
    assert code == 0 and "CREDBATCH_DEFAULT_" in err
    code, out, err = await _cli(
        db_settings, "limits", "set", tenant, "--sms-per-second", "2.5", "--max-open-records", "10"
    )
    assert code == 0, err
    assert "sms_per_second" in out and "2.5" in out and "unlimited" in out
    code, _, err = await _cli(db_settings, "limits", "set", tenant, "--sms-per-second", "-1")
    assert code == 5 and "sms_per_second must be more than 0" in err
    code, _, err = await _cli(db_settings, "limits", "set", tenant)
    assert code != 0 and "name at least one limit" in err
    assert len(await audit_entries(owner_pool, uuid.UUID(tenant))) == 1
