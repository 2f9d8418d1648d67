"""The relay process: connect to PostgreSQL and RabbitMQ, relay until SIGTERM/SIGINT.

Beside the outbox relay it runs the sweeper (stuck records dispatched again; INVITED records
whose claim link ran out made EXPIRED), the dead-letter
consumer (records of dead-lettered jobs FAILED), so every batch ends, and the count folder
(every tenant's record count deltas folded into batch_counts, so readers sum few rows).

Several relays run side by side, each running all four, with no leader. Each part is safe to
run in every relay because of how it takes its work:

* a relay window claims its records ``FOR UPDATE SKIP LOCKED`` and publishes them before its
  commit (``workers.relay.relay``): two relays never hold the same record;
* a sweeper pass locks its stuck records ``SKIP LOCKED`` too and touches each it keeps, so a
  second sweeper skips the rows the first holds and, once it committed, finds them no longer
  stuck (PostgreSQL re-checks a locked row's condition against its committed version);
* the broker hands each dead letter to one consumer and it is acked only after its outcome
  committed; a redelivery after a relay died finds the record's state already changed and
  changes nothing again (``workers.relay.dead_letters``);
* a count fold moves rows in one statement and changes no count a reader sees.

A leader (a PostgreSQL advisory lock held by one relay's session) was the alternative, and
rejected: a session lock cannot be held through a transaction-mode connection pooler, and
while a leader's session lingers (a partitioned pod, until TCP keepalive notices) nobody would
sweep or drain dead letters. Without one, a relay that dies stops nothing: its open
transaction rolls back, its unacked dead letters go back to the queue, and the other relays
go on. The cost is one sweeper query and one fold per relay per interval, all cheap.

Every relay samples the same backlog gauges: aggregate them with ``max``, not ``sum``.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from credbatch.batches.counts import fold_until
from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.messaging import ConfirmingPublisher, connect, declare_topology
from credbatch.metrics import metrics_enabled
from credbatch.server.health import postgres_check, rabbitmq_check
from credbatch.server.health_server import serving_health
from workers.relay.dead_letters import DeadLetterConsumer
from workers.relay.gauges import BacklogGauges
from workers.relay.relay import DispatchLimits, OutboxRelay
from workers.relay.sweeper import Sweeper

log = logging.getLogger(__name__)


def dispatch_limits(settings: Settings) -> DispatchLimits:
    """The relay's caps and default sending rates from the settings (a cap of 0 = none)."""
    return DispatchLimits(
        max_in_flight=settings.relay_max_in_flight or None,
        tenant_in_flight=settings.relay_tenant_in_flight or None,
        batch_in_flight=settings.relay_batch_in_flight or None,
        emails_per_second=settings.default_emails_per_second,
        sms_per_second=settings.default_sms_per_second,
        # A reminder job unfinished this long is published again, as a QUEUED record is.
        reminder_stuck_after=settings.stuck_after,
    )


async def serve(settings: Settings) -> None:
    """Relay windows until signalled; the window in progress is finished before stopping."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # As the relay role, the only one granted the cross-tenant outbox, sweeper and count fold
    # functions: one connection each for a relay window, a sweeper pass, a fold, the backlog
    # gauges and health.
    pool = await create_pool(
        settings.relay_database_url, **settings.pools.args("relay"), application_name="relay"
    )
    # A dead letter names its tenant: its record is failed in that tenant's transaction, as
    # the application role (row-level security applies).
    tenant_pool = await create_pool(
        settings.app_database_url,
        **settings.pools.args("relay_dead_letters"),
        application_name="relay_dead_letters",
    )
    try:
        # A robust connection: after a broker restart it reconnects and reopens the channel;
        # windows that fail meanwhile leave their records PENDING.
        connection = await connect(settings, name="credbatch-relay")
        try:
            channel = await connection.channel(publisher_confirms=True)
            await declare_topology(channel, settings)
            publisher = ConfirmingPublisher(channel)
            relay = OutboxRelay(
                pool,
                publisher,
                window=settings.relay_batch_size,
                publish_timeout=settings.relay_publish_timeout,
                poll_interval=settings.relay_poll_interval,
                limits=dispatch_limits(settings),
                bundle=settings.job_bundle_size,
            )
            sweeper = Sweeper(
                pool,
                publisher,
                stuck_after=settings.stuck_after,
                retry_delays=settings.retry_delays,
                publish_timeout=settings.relay_publish_timeout,
                expiry_interval=settings.expiry_interval,
            )
            dead_letters = DeadLetterConsumer(settings, tenant_pool)
            checks = (postgres_check(pool), rabbitmq_check(connection))
            async with serving_health("relay", settings.host, settings.health_port, checks, stop):
                await dead_letters.start(connection)
                log.info(
                    "relay started (window %d, up to %d jobs a message)",
                    settings.relay_batch_size,
                    settings.job_bundle_size,
                )
                tasks = [relay.run(stop), sweeper.run(stop), fold_until(pool, stop)]
                if metrics_enabled():
                    # Its own channel: a failed passive declaration closes the channel it ran on.
                    tasks.append(BacklogGauges(pool, await connection.channel()).run(stop))
                try:
                    await asyncio.gather(*tasks)
                finally:
                    await dead_letters.stop()
        finally:
            await connection.close()
    finally:
        await tenant_pool.close()
        await pool.close()
    log.info("relay stopped")
