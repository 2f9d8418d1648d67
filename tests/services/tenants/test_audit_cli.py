"""`credbatch audit` against a real TenantService: the trail as a table, its shorthands, and
the exit codes of a refused caller and a bad filter."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import asyncpg

from credbatch.auth.tokens import mint_dev_token
from credbatch.cli.audit import filter_text
from credbatch.config import Settings
from services.tenants.main import service_specs
from tests.fixtures.grpc import StartApp
from tests.services.tenants.test_audit_events import _seed


async def _cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "credbatch.cli.main",
        *args,
        env={**os.environ, "PYTHONPATH": os.getcwd(), "COLUMNS": "250"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_audit_lists_filters_and_refuses(
    settings: Settings, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, start_app: StartApp
) -> None:
    running = await start_app(settings, service_specs(settings, app_pool))
    tenant = uuid.uuid4()
    await _seed(owner_pool, tenant)
    admin = mint_dev_token(settings, tenant=tenant, sub="admin", roles=["org_admin"])
    where = ("--tenants-addr", f"127.0.0.1:{running.port}")

    code, out, err = await _cli("audit", *where, "--token", admin)
    assert code == 0, err
    assert "5 audit event(s)" in out
    lines = [line for line in out.splitlines() if "2026-03-01" in line]
    assert "webhook_secret.rotate" in lines[0] and "batch.upload" in lines[-1]
    assert '{"records":3}' in out

    code, out, err = await _cli(
        "audit", *where, "--token", admin, "--actor", "ana", "--since", "2026-03-01T12:01:00Z"
    )
    assert code == 0, err
    assert "2 audit event(s)" in out
    assert "batch.cancel" in out and "batch.upload" not in out

    issuer = mint_dev_token(settings, tenant=tenant, sub="i", roles=["issuer"])
    code, _, err = await _cli("audit", *where, "--token", issuer)
    assert code == 4 and len(err.splitlines()) == 1

    code, _, err = await _cli("audit", *where, "--token", admin, "--action", "batch.explode")
    assert code == 5 and "unknown action" in err


def test_shorthands_are_quoted_and_joined() -> None:
    assert filter_text("") == ""
    assert (
        filter_text('outcome = "OK"', actor='a "b" OR c', since="2026-01-01T00:00:00Z")
        == 'outcome = "OK" AND actor = "a \\"b\\" OR c" AND occur_time >= "2026-01-01T00:00:00Z"'
    )
