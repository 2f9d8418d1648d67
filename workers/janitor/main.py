"""The janitor process: a pass every CREDBATCH_JANITOR_INTERVAL seconds until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.server.health import postgres_check
from credbatch.server.health_server import serving_health
from workers.janitor.janitor import Periods, run

log = logging.getLogger(__name__)


def periods(settings: Settings) -> Periods:
    """The retention periods of ``settings``, by kind."""
    webhooks = timedelta(days=settings.webhook_retention_days)
    return Periods(
        retention_days=settings.retention_days,
        audit_days=settings.audit_retention_days,
        prune={
            "webhook_deliveries": webhooks,
            "webhook_events": webhooks,
            "spent_nonces": timedelta(seconds=settings.nonce_retention),
            "offers": timedelta(seconds=settings.offer_retention),
            "access_tokens": timedelta(seconds=settings.access_token_retention),
            "idempotency_keys": timedelta(seconds=settings.idempotency_retention),
            "dispatch": timedelta(seconds=settings.dispatch_retention),
            "send_stamps": timedelta(seconds=settings.send_stamp_retention),
        },
    )


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The janitor's role reads no table: every step is a janitor_* function.
    pool = await create_pool(
        settings.janitor_database_url, **settings.pools.args("janitor"), application_name="janitor"
    )
    try:
        async with serving_health(
            "janitor", settings.host, settings.health_port, (postgres_check(pool),), stop
        ):
            log.info(
                "janitor started (personal data kept %d days after a batch ends, a pass every "
                "%.0fs, %d rows a step)",
                settings.retention_days,
                settings.janitor_interval,
                settings.janitor_step_rows,
            )
            await run(
                pool,
                periods(settings),
                settings.janitor_step_rows,
                settings.janitor_interval,
                stop,
                settings.janitor_step_pause,
                settings.janitor_share,
            )
    finally:
        await pool.close()
    log.info("janitor stopped")
