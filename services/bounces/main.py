"""The bounce receiver process: SMTP for the bounce domain until SIGTERM/SIGINT.

Needs the public endpoints' database role only (``CREDBATCH_PUBLIC_DATABASE_URL``): like
them it faces the internet unauthenticated, and all it may do is record a delivery report on
the one record a checked VERP token names. It holds the bounce key and no other secret.
On a signal it stops accepting connections, lets the conversations in progress finish for
up to the grace period, then closes the pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import asyncpg
from aiosmtpd.smtp import SMTP

from credbatch.bounce_settings import bounce_identity
from credbatch.config import ConfigError, Settings
from credbatch.db.pool import create_pool
from credbatch.server.health import postgres_check
from credbatch.server.health_server import serving_health
from services.bounces.handler import BounceHandler

log = logging.getLogger(__name__)


def receiver_identity(settings: Settings) -> tuple[bytes, str]:
    """The bounce key and domain; a receiver without them could accept nothing."""
    identity = bounce_identity(settings)
    if identity is None:
        raise ConfigError("services.bounces needs CREDBATCH_BOUNCE_DOMAIN and CREDBATCH_BOUNCE_KEY")
    return identity


async def start_server(
    settings: Settings, pool: asyncpg.Pool, host: str, port: int
) -> tuple[asyncio.base_events.Server, BounceHandler]:
    """The SMTP server on host:port (0: any free port), recording through ``pool``."""
    key, domain = receiver_identity(settings)
    handler = BounceHandler.on_pool(key, domain, pool)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            handler,
            hostname=domain,
            # Announced as SIZE and enforced while reading: past it aiosmtpd discards the
            # rest and answers 552, so no message costs more memory than this.
            data_size_limit=settings.bounce_max_bytes,
            # A client that goes quiet is dropped rather than holding a connection open.
            timeout=60,
            # Bounces need no authentication and no mail from us: nothing to advertise.
            auth_require_tls=False,
        ),
        host,
        port,
        reuse_address=True,
    )
    return server, handler


async def serve(settings: Settings) -> None:
    receiver_identity(settings)  # before anything starts: fail fast without them
    # aiosmtpd logs every connection and command at INFO, with the peer's addresses in them:
    # costly at hundreds of reports a second, and the recipients' VERP tokens are no one's
    # business in a log.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pool = await create_pool(
        settings.public_database_url, **settings.pools.args("bounces"), application_name="bounces"
    )
    try:
        server, handler = await start_server(settings, pool, settings.host, settings.bounce_port)
        log.info(
            "bounce receiver for %s on %s:%d",
            settings.bounce_domain,
            settings.host,
            settings.bounce_port,
        )
        async with serving_health(
            "bounces", settings.host, settings.health_port, (postgres_check(pool),), stop
        ):
            await stop.wait()
            # No new connection; a message being recorded gets its answer (a sender whose
            # connection then drops tries again later, as SMTP senders do).
            server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(handler.drained(), settings.grace_seconds)
    finally:
        await pool.close()
    log.info("bounce receiver stopped")
