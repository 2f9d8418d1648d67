"""The public HTTP process (uvicorn), stopped gracefully on SIGTERM/SIGINT."""

from __future__ import annotations

import logging

import httpx
import uvicorn
from starlette.types import ASGIApp

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.server.http_metrics import HttpMetrics
from services.public.app import create_app
from services.public.signer_client import SignerClient

log = logging.getLogger(__name__)


def server_config(app: ASGIApp, settings: Settings) -> uvicorn.Config:
    """uvicorn's configuration of the public process."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.public_port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=int(settings.grace_seconds),
        lifespan="off",
        # The application decides who the client is (client_address, from
        # CREDBATCH_TRUSTED_PROXIES); uvicorn's own handling would believe X-Forwarded-For
        # from 127.0.0.1 and ::1 (or FORWARDED_ALLOW_IPS) before the application sees it.
        proxy_headers=False,
    )


async def serve(settings: Settings) -> None:
    """Serve on ``settings.host:settings.public_port`` until signalled.

    Needs only its own role's database URL (``settings.public_database_url``): no KEK, no
    owner or application URL, no broker. Status list tokens are signed and stored by the
    issuance workers; holder-bound credentials are signed by the internal signer
    (``settings.signer_url``, with ``settings.signer_token``). Its c_nonces are MACs under
    ``settings.nonce_key``, which it refuses to start without.
    """
    nonce_key = settings.nonce_key_bytes()  # before anything starts: fail fast without it
    pool = await create_pool(
        settings.public_database_url, **settings.pools.args("public"), application_name="public"
    )
    signer_http = httpx.AsyncClient(base_url=settings.signer_url, timeout=10.0)
    try:
        app = HttpMetrics(
            create_app(
                pool,
                settings.public_url,
                status_ttl=settings.status_ttl,
                rate=settings.public_rate,
                burst=settings.public_burst,
                signer=SignerClient(signer_http, settings.signer_token),
                nonce_key=nonce_key,
                trusted_proxies=settings.trusted_proxies,
                sms_token=settings.sms_token,
            )
        )
        # uvicorn installs its own SIGTERM/SIGINT handlers and drains connections on them.
        await uvicorn.Server(server_config(app, settings)).serve()
    finally:
        await signer_http.aclose()
        await pool.close()
    log.info("public endpoints stopped")
