"""A group spanning more tenants than the pool has connections must not deadlock.

Each tenant's issue transaction holds a pooled connection while it loads the batch context,
the signing key and status-list indexes through other pooled connections; with every
connection held by such a transaction, none of them could ever get its second one.
"""

from __future__ import annotations

import asyncio
import base64

import asyncpg

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.messaging import ConfirmingPublisher, connect, declare_topology
from credbatch.signing.keys import KeyRing
from credbatch.signing.status_list import StatusAllocator
from credbatch.templating.runner import RenderPool
from tests.fixtures.issuance import KEK, Sinks, arrange_batch, publish_jobs
from workers.issuance.delivery.email import SmtpPool
from workers.issuance.handler import IssuanceHandler


async def test_group_of_more_tenants_than_pool_connections_completes(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks, render_pool: RenderPool
) -> None:
    tenants = [
        await arrange_batch(owner_pool, 1, mediums=("EMAIL",), certificate=False) for _ in range(3)
    ]
    for arranged in tenants:
        await publish_jobs(worker_settings, arranged)
    pool = await create_pool(
        worker_settings.app_database_url,
        max_size=2,
        statement_cache_size=worker_settings.pools.statement_cache_size,
    )
    smtp = SmtpPool(worker_settings.smtp_host, worker_settings.smtp_port, 2)
    connection = await connect(worker_settings)
    try:
        channel = await connection.channel(publisher_confirms=True)
        topology = await declare_topology(channel, worker_settings)
        messages = []
        for _ in range(50):
            message = await topology.work_queue.get(no_ack=False, fail=False)
            if message is not None:
                messages.append(message)
            if len(messages) == 3:
                break
            if message is None:
                await asyncio.sleep(0.05)
        assert len(messages) == 3
        handler = IssuanceHandler(
            worker_settings,
            pool,
            KeyRing(pool, base64.b64decode(KEK)),
            StatusAllocator(pool),
            ConfirmingPublisher(channel),
            smtp=smtp,
            sms=None,
            renderer=render_pool,
        )
        await asyncio.wait_for(handler.handle(messages), 20)
    finally:
        await connection.close()
        await smtp.close()
        await pool.close()
    for arranged in tenants:
        state = await owner_pool.fetchval(
            "SELECT state FROM records WHERE id = $1", arranged.record_ids[0]
        )
        assert state == "INVITED"
