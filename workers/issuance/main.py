"""The issuance worker process: consume jobs until SIGTERM/SIGINT, then drain and close."""

from __future__ import annotations

import asyncio
import logging
import signal

from credbatch.bounce_settings import bounce_identity
from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.messaging import ConfirmingPublisher, connect
from credbatch.server.health import postgres_check, rabbitmq_check
from credbatch.server.health_server import serving_health
from credbatch.signing.keys import KeyRing
from credbatch.signing.status_list import StatusAllocator
from credbatch.signing.status_tokens import StatusTokenSigner
from credbatch.templating.runner import RenderPool
from workers.issuance.consumer import IssuanceConsumer
from workers.issuance.delivery.email import SmtpPool
from workers.issuance.delivery.sms import SmsClient
from workers.issuance.handler import IssuanceHandler
from workers.issuance.status_refresher import run_status_refresher

log = logging.getLogger(__name__)


async def serve(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run one worker until ``stop`` is set (default: on SIGTERM or SIGINT).

    Refuses to start (ConfigError) without a valid KEK: it could not sign anything; nor with
    a bounce domain but no bounce key: it could not address its mail.
    """
    kek = settings.kek_bytes()
    bounce_identity(settings)
    # httpx logs every request at INFO: one line per SMS is noise, not information.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    # Connections: the groups in flight each hold one for a transaction, plus key and
    # status-list reservations (CREDBATCH_WORKER_POOL_MAX, by default a tenth of the prefetch).
    pool = await create_pool(
        settings.app_database_url, **settings.pools.args("worker"), application_name="issuance"
    )
    smtp = SmtpPool(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_pool_size,
        timeout=settings.smtp_timeout,
        tls=settings.smtp_tls,
        username=settings.smtp_username,
        password=settings.smtp_password,
        ca_file=settings.smtp_ca_file,
    )
    sms = SmsClient(
        settings.sms_url,
        settings.sms_account,
        settings.sms_token,
        settings.sms_from,
        timeout=settings.sms_timeout,
        max_connections=settings.worker_concurrency,
        # The public endpoints record what the provider later says of each message.
        status_callback=f"{settings.public_url}/sms/status",
    )
    # Renders run in processes of their own, stopped by force when they run away.
    renderer = RenderPool.from_settings(settings)
    await renderer.start()
    # The refresher lists due status list tokens of every tenant as its own role, the only
    # one allowed to; it signs each in its tenant's transaction on the pool above.
    refresher_pool = await create_pool(
        settings.refresher_database_url,
        **settings.pools.args("refresher"),
        application_name="status_refresher",
    )
    connection = await connect(settings, name="credbatch-issuance")
    keys = KeyRing(pool, kek)
    signer = StatusTokenSigner(pool, keys, settings.public_url, ttl_seconds=settings.status_ttl)
    refresher = asyncio.create_task(
        run_status_refresher(signer, refresher_pool, stop, settings.status_refresh_interval)
    )
    try:
        publish_channel = await connection.channel(publisher_confirms=True)
        handler = IssuanceHandler(
            settings,
            pool,
            keys,
            StatusAllocator(pool, publisher=signer),
            ConfirmingPublisher(publish_channel),
            smtp=smtp,
            sms=sms,
            renderer=renderer,
        )
        consumer = IssuanceConsumer(settings, handler)
        checks = (postgres_check(pool), rabbitmq_check(connection))
        async with serving_health("issuance", settings.host, settings.health_port, checks, stop):
            await consumer.start(connection)
            log.info(
                "issuance worker started (prefetch %d, concurrency %d)",
                settings.worker_prefetch,
                settings.worker_concurrency,
            )
            await stop.wait()
            log.info("stopping: draining jobs in flight (grace %.1fs)", settings.grace_seconds)
            await consumer.stop(settings.grace_seconds)
    finally:
        refresher.cancel()
        await asyncio.gather(refresher, return_exceptions=True)
        await connection.close()
        await smtp.close()
        await sms.close()
        await renderer.close()
        await refresher_pool.close()
        await pool.close()
    log.info("issuance worker stopped")
