"""The relay process folds every tenant's record count deltas, as its own role.

The fold crosses tenants, so it left the batch status service (application role) for the
relay, whose role alone may run ``batch_counts_fold``. Here the relay publishes a batch and
folds the deltas its own marks produced, and those the upload wrote before.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg

from credbatch.config import Settings
from tests.fixtures.relay import MakePending, start_relay


async def _counts(owner_pool: asyncpg.Pool, batch_id: object) -> tuple[int, dict[str, int]]:
    deltas = await owner_pool.fetchval(
        "SELECT count(*) FROM batch_count_deltas WHERE batch_id = $1", batch_id
    )
    folded = await owner_pool.fetch(
        "SELECT state, n FROM batch_counts WHERE batch_id = $1 AND n <> 0", batch_id
    )
    return deltas, {r["state"]: r["n"] for r in folded}


async def test_the_relay_folds_the_counts_of_what_it_published(
    settings: Settings,
    owner_pool: asyncpg.Pool,
    make_pending: MakePending,
    fresh_amqp_url: str,
    tmp_path: Path,
) -> None:
    batch = await make_pending(10)
    assert (await _counts(owner_pool, batch.batch_id))[0] > 0
    log_path = tmp_path / "relay.log"
    with log_path.open("ab") as log:
        relay = start_relay(settings, fresh_amqp_url, log)
    try:
        async with asyncio.timeout(60):
            while await _counts(owner_pool, batch.batch_id) != (0, {"QUEUED": 10}):
                assert relay.poll() is None, log_path.read_text()
                await asyncio.sleep(0.1)
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(timeout=20) == 0, log_path.read_text()
    finally:
        if relay.poll() is None:
            relay.kill()
