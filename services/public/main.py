"""The public HTTP process (uvicorn), stopped gracefully on SIGTERM/SIGINT."""

from __future__ import annotations

import logging

import uvicorn

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from services.public.app import create_app
from services.public.http_metrics import HttpMetrics

log = logging.getLogger(__name__)


async def serve(settings: Settings) -> None:
    """Serve on ``settings.host:settings.public_port`` until signalled.

    Needs only the application role's database URL: no KEK, no owner URL, no broker. Status
    list tokens are signed and stored by the issuance workers.
    """
    pool = await create_pool(settings.app_database_url, max_size=8, application_name="public")
    try:
        app = HttpMetrics(
            create_app(
                pool,
                settings.public_url,
                status_ttl=settings.status_ttl,
                rate=settings.public_rate,
                burst=settings.public_burst,
            )
        )
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.public_port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=int(settings.grace_seconds),
            lifespan="off",
        )
        # uvicorn installs its own SIGTERM/SIGINT handlers and drains connections on them.
        await uvicorn.Server(config).serve()
    finally:
        await pool.close()
    log.info("public endpoints stopped")
