"""The webhook dispatcher process: deliver until SIGTERM/SIGINT, then finish what is in flight."""

from __future__ import annotations

import asyncio
import logging
import signal

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.server.health import postgres_check
from credbatch.server.health_server import serving_health
from credbatch.webhooks.sealing import SecretBox
from workers.webhooks import gauges
from workers.webhooks.dispatcher import DispatchConfig, Dispatcher
from workers.webhooks.sender import new_client

log = logging.getLogger(__name__)


def dispatch_config(settings: Settings) -> DispatchConfig:
    return DispatchConfig(
        schedule=settings.webhook_retry_schedule,
        timeout=settings.webhook_timeout,
        lease_seconds=settings.webhook_lease_seconds,
        per_endpoint=settings.webhook_endpoint_concurrency,
        concurrency=settings.webhook_dispatch_concurrency,
        poll_interval=settings.webhook_poll_interval,
        disable_after=settings.webhook_disable_after,
        development=settings.development,
    )


async def serve(settings: Settings) -> None:
    # Refuses to start without the webhook KEK (ConfigError): it could sign nothing.
    box = SecretBox(settings.webhook_kek_bytes())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Each delivery holds a connection only for its short reads and writes, never across
    # the HTTP request.
    pool = await create_pool(
        settings.app_database_url,
        **settings.pools.args("dispatcher"),
        application_name="webhooks_dispatcher",
    )
    # The claim (and the backlog age for the metrics) alone run as the webhooks role: the
    # claim leases deliveries of every tenant.
    claim_pool = await create_pool(
        settings.webhooks_database_url,
        **settings.pools.args("dispatcher_claim"),
        application_name="webhooks_claim",
    )
    sampling = asyncio.create_task(gauges.run(claim_pool, stop))
    try:
        checks = (postgres_check(pool),)
        async with (
            new_client() as client,
            serving_health(
                "webhooks_dispatcher", settings.host, settings.health_port, checks, stop
            ),
        ):
            dispatcher = Dispatcher(
                pool, client, dispatch_config(settings), claim_pool=claim_pool, box=box
            )
            log.info(
                "webhook dispatcher started (%d in flight, %d per endpoint)",
                settings.webhook_dispatch_concurrency,
                settings.webhook_endpoint_concurrency,
            )
            await dispatcher.run(stop)
    finally:
        stop.set()
        await sampling
        await claim_pool.close()
        await pool.close()
    log.info("webhook dispatcher stopped")
