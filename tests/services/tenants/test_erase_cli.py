"""`credbatch tenant erase-holder` against a real TenantService: what it prints, its exit codes,
and that it refuses an ambiguous command before calling anything."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import asyncpg

from credbatch.auth.tokens import mint_dev_token
from credbatch.config import Settings
from services.tenants.main import service_specs
from tests.fixtures.batches import insert_batch
from tests.fixtures.grpc import StartApp


async def _cli(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "credbatch.cli.main",
        *args,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_erase_holder_prints_what_it_touched_then_nothing(
    settings: Settings, app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, start_app: StartApp
) -> None:
    running = await start_app(settings, service_specs(settings, app_pool))
    tenant = uuid.uuid4()
    batch = await insert_batch(
        owner_pool,
        tenant,
        states=("FAILED", "CANCELLED", "FAILED"),
        emails=("ada@example.org", "ada@example.org", "grace@example.org"),
        batch_state="COMPLETED_WITH_ERRORS",
    )
    token = mint_dev_token(settings, tenant=tenant, sub="admin", roles=["org_admin"])
    where = ("--tenants-addr", f"127.0.0.1:{running.port}", "--token", token)

    code, err = await _cli("tenant", "erase-holder", "--email", "ada@example.org", *where)
    assert code != 0 and "choose --revoke or --keep-valid" in err

    command = ("tenant", "erase-holder", "--email", "Ada@Example.org", "--keep-valid", "--yes")
    code, err = await _cli(*command, *where)
    assert code == 0, err
    assert "2 record(s) erased in 1 batch(es); 0 credential(s) revoked" in err
    assert (
        await owner_pool.fetchval(
            "SELECT count(*) FROM records WHERE batch_id = $1 AND purge_reason = 'ERASURE'",
            batch.batch_id,
        )
        == 2
    )

    code, err = await _cli(*command, *where)
    assert code == 0 and "nothing to erase" in err
