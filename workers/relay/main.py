"""The relay process: connect to PostgreSQL and RabbitMQ, relay until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.messaging import ConfirmingPublisher, connect, declare_topology
from credbatch.metrics import metrics_enabled
from workers.relay.gauges import BacklogGauges
from workers.relay.relay import DispatchLimits, OutboxRelay

log = logging.getLogger(__name__)


def dispatch_limits(settings: Settings) -> DispatchLimits:
    """The relay's caps and default sending rates from the settings (a cap of 0 = none)."""
    return DispatchLimits(
        max_in_flight=settings.relay_max_in_flight or None,
        tenant_in_flight=settings.relay_tenant_in_flight or None,
        batch_in_flight=settings.relay_batch_in_flight or None,
        emails_per_second=settings.default_emails_per_second,
        sms_per_second=settings.default_sms_per_second,
    )


async def serve(settings: Settings) -> None:
    """Relay windows until signalled; the window in progress is finished before stopping."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pool = await create_pool(settings.relay_database_url, max_size=2, application_name="relay")
    try:
        # A robust connection: after a broker restart it reconnects and reopens the channel;
        # windows that fail meanwhile leave their records PENDING.
        connection = await connect(settings, name="credbatch-relay")
        try:
            channel = await connection.channel(publisher_confirms=True)
            await declare_topology(channel, settings)
            relay = OutboxRelay(
                pool,
                ConfirmingPublisher(channel),
                window=settings.relay_batch_size,
                publish_timeout=settings.relay_publish_timeout,
                poll_interval=settings.relay_poll_interval,
                limits=dispatch_limits(settings),
            )
            log.info("relay started (window %d)", settings.relay_batch_size)
            if metrics_enabled():
                # Its own channel: a failed passive declaration closes the channel it ran on.
                gauges = BacklogGauges(pool, await connection.channel())
                await asyncio.gather(relay.run(stop), gauges.run(stop))
            else:
                await relay.run(stop)
        finally:
            await connection.close()
    finally:
        await pool.close()
    log.info("relay stopped")
