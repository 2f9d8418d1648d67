"""The signer process (uvicorn on loopback), stopped gracefully on SIGTERM/SIGINT."""

from __future__ import annotations

import logging

import uvicorn

from credbatch.config import ConfigError, Settings
from credbatch.db.pool import create_pool
from credbatch.server.http_metrics import HttpMetrics
from credbatch.signing.keys import KeyRing
from services.signer.app import create_signer_app

log = logging.getLogger(__name__)


async def serve(settings: Settings) -> None:
    """Serve on ``settings.host:settings.signer_port`` until signalled.

    Holds the KEK (like the issuance workers) and its own role's database URL
    (``settings.signer_database_url``).
    """
    if not settings.signer_token:
        raise ConfigError("CREDBATCH_SIGNER_TOKEN is required (the public endpoints send it)")
    kek = settings.kek_bytes()
    pool = await create_pool(
        settings.signer_database_url, **settings.pools.args("signer"), application_name="signer"
    )
    try:
        app = HttpMetrics(
            create_signer_app(pool, KeyRing(pool, kek, signer=True), settings.signer_token)
        )
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.signer_port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=int(settings.grace_seconds),
            lifespan="off",
        )
        await uvicorn.Server(config).serve()
    finally:
        await pool.close()
    log.info("signer stopped")
