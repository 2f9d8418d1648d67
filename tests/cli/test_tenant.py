"""`credbatch tenant show|update` against a TenantService on port 0."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest_asyncio
from click.testing import CliRunner, Result

from credbatch.auth.tokens import mint_dev_token
from credbatch.cli.main import cli
from credbatch.config import Settings
from services.tenants.main import service_specs
from tests.fixtures.grpc import StartApp
from tests.tenants.images import SVG_CLEAN


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tenants_addr(settings: Settings, app_pool: asyncpg.Pool, start_app: StartApp) -> str:
    running = await start_app(settings, service_specs(settings, app_pool))
    return f"127.0.0.1:{running.port}"


async def run(args: list[str], token: str, addr: str) -> Result:
    env = {"CREDBATCH_TOKEN": token, "CREDBATCH_TENANTS_ADDR": addr, "COLUMNS": "250"}
    return await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)


async def test_update_then_show(settings: Settings, tenants_addr: str, tmp_path: Path) -> None:
    token = mint_dev_token(settings, tenant=uuid.uuid4(), sub="admin", roles=["org_admin"])
    logo = tmp_path / "logo.svg"
    logo.write_bytes(SVG_CLEAN)
    updated = await run(
        [
            "tenant", "update", "--display-name", "Example University", "--name",
            "de=Beispiel-Universität", "--logo", str(logo), "--primary-color", "#1a4480",
            "--support-email", "help@example.edu", "--reminder-days", "3,10",
            "--retention-days", "60",
        ],
        token,
        tenants_addr,
    )  # fmt: skip
    assert updated.exit_code == 0, updated.output
    shown = await run(["tenant", "show"], token, tenants_addr)
    assert shown.exit_code == 0, shown.output
    for expected in ("Example University", "Beispiel-Universität", "image/svg+xml", "#1a4480",
                     "help@example.edu", "3,10", "60"):  # fmt: skip
        assert expected in shown.stdout
    cleared = await run(["tenant", "update", "--no-logo", "--retention-days", "default"], token,
                        tenants_addr)  # fmt: skip
    assert cleared.exit_code == 0, cleared.output
    assert "image/svg+xml" not in cleared.stdout and "platform default" in cleared.stdout


async def test_a_refused_field_is_named_and_nothing_given_is_an_error(
    settings: Settings, tenants_addr: str
) -> None:
    token = mint_dev_token(settings, tenant=uuid.uuid4(), sub="admin", roles=["org_admin"])
    refused = await run(["tenant", "update", "--support-url", "http://x.example"], token,
                        tenants_addr)  # fmt: skip
    assert refused.exit_code != 0
    assert "tenant_profile.support_url" in refused.output
    empty = await run(["tenant", "update"], token, tenants_addr)
    assert empty.exit_code != 0 and "nothing to change" in empty.output
