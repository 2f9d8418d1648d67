"""`credbatch webhooks …` against a WebhookService on port 0 and a real receiver."""

from __future__ import annotations

import asyncio
import re
import uuid

import asyncpg
import pytest_asyncio
from click.testing import CliRunner, Result
from standardwebhooks import Webhook

from credbatch.auth.tokens import mint_dev_token
from credbatch.cli.main import cli
from credbatch.config import Settings
from services.webhooks.main import service_specs
from tests.fixtures.grpc import StartApp
from tests.fixtures.webhooks import dispatching
from tests.workers.webhooks.events import finish_batch
from tests.workers.webhooks.receiver import running_receiver


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def webhooks_addr(settings: Settings, app_pool: asyncpg.Pool, start_app: StartApp) -> str:
    running = await start_app(settings, service_specs(settings, app_pool))
    return f"127.0.0.1:{running.port}"


async def run(args: list[str], token: str, addr: str) -> Result:
    # The service runs on this event loop; the CLI's blocking calls run beside it.
    env = {"CREDBATCH_TOKEN": token, "CREDBATCH_WEBHOOKS_ADDR": addr, "COLUMNS": "250"}
    return await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)


async def test_create_list_deliveries_redeliver(
    settings: Settings, webhooks_addr: str, owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    token = mint_dev_token(settings, tenant=tenant, sub="admin", roles=["org_admin"])
    try:
        async with running_receiver() as receiver:
            created = await run(
                [
                    "webhooks",
                    "create",
                    receiver.url("/cli"),
                    "--event",
                    "batch.completed",
                    "--description",
                    "from the CLI",
                ],
                token,
                webhooks_addr,
            )
            assert created.exit_code == 0, created.output
            (secret,) = re.findall(r"whsec_[A-Za-z0-9+/=]+", created.stdout)
            (name,) = re.findall(r"webhookEndpoints/[0-9a-f-]{36}", created.stderr)
            listed = await run(["webhooks", "list"], token, webhooks_addr)
            assert name in listed.stdout and "from the CLI" in listed.stdout
            assert "whsec_" not in listed.stdout

            await finish_batch(owner_pool, app_pool, tenant)
            async with dispatching(app_pool):
                (first,) = await receiver.wait_for("/cli", 1)
                Webhook(secret).verify(first.body, first.headers)
                shown = await run(
                    ["webhooks", "deliveries", name, "--outcome", "succeeded"], token, webhooks_addr
                )
                while "SUCCEEDED" not in shown.stdout:
                    await asyncio.sleep(0.1)
                    shown = await run(["webhooks", "deliveries", name], token, webhooks_addr)
                (delivery,) = re.findall(rf"{name}/deliveries/[0-9a-f-]{{36}}", shown.stdout)
                again = await run(["webhooks", "redeliver", delivery], token, webhooks_addr)
                assert again.exit_code == 0, again.output
                _, second = await receiver.wait_for("/cli", 2)
            assert second.headers["webhook-id"] == first.headers["webhook-id"]
        refused = await run(["webhooks", "create", "ftp://127.0.0.1/x"], token, webhooks_addr)
        assert refused.exit_code == 5 and "webhook_endpoint.url" in refused.stderr
    finally:
        await owner_pool.execute("DELETE FROM webhook_endpoints WHERE tenant_id = $1", tenant)
