"""The janitor process serves its metrics: records purged, rows pruned by kind, pass times."""

from __future__ import annotations

import subprocess
import sys

import asyncpg
import pytest

from credbatch.config import Settings
from tests.fixtures.observed import assert_serves_what_is_used
from tests.fixtures.processes import free_port, process_env
from tests.fixtures.scrape import find, stop, wait_for_sample
from tests.workers.janitor.world import ended_batch


@pytest.mark.integration
async def test_the_janitor_counts_what_it_purged_and_pruned(
    db_settings: Settings, owner_pool: asyncpg.Pool
) -> None:
    await ended_batch(owner_pool, 50, ("FAILED", "INVITED"))
    port = free_port()
    env = process_env(
        db_settings, CREDBATCH_METRICS_PORT=str(port), CREDBATCH_JANITOR_INTERVAL="3600"
    )
    janitor = subprocess.Popen(
        [sys.executable, "-m", "workers.janitor"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        samples = await wait_for_sample(port, "credbatch_janitor_pass_duration_seconds_count")
    finally:
        output = stop(janitor)
    assert find(samples, "credbatch_janitor_purged_total")[0].value >= 2, output
    kinds = {
        s.labels["credbatch_janitor_kind"] for s in find(samples, "credbatch_janitor_pruned_total")
    }
    assert kinds == {
        "webhook_deliveries",
        "webhook_events",
        "spent_nonces",
        "offers",
        "access_tokens",
        "idempotency_keys",
        "dispatch",
        "send_stamps",
        "audit_events",
    }
    assert_serves_what_is_used(samples, "janitor")
