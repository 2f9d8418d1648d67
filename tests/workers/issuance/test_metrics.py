"""A worker process serves its job, record and invitation metrics on CREDBATCH_METRICS_PORT.

One real worker (``python -m workers.issuance``) on this test's vhost and the local sinks:
email records are invited (ack), SMS records meet a provider answering 503 until they run out
of attempts (retry, then dead_letter), and the email jobs published again find their records
finished (skipped).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import asyncpg
from prometheus_client.samples import Sample

from credbatch.config import Settings
from tests.fixtures.issuance import (
    Arranged,
    Sinks,
    arrange_batch,
    publish_jobs,
    stop_process,
    wait_for_batch,
    worker_env,
)
from tests.fixtures.observed import assert_serves_what_is_used
from tests.fixtures.processes import free_port
from tests.fixtures.scrape import find, scrape, wait_for_sample

JOBS = "credbatch_jobs_total"
# Seconds the slow SMTP relay takes to accept a message (the incident saw 8).
SLOW_SMTP_SECONDS = 3.0


def _total(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(s.value for s in find(samples, name, **labels))


async def test_worker_counts_outcomes_transitions_and_invitations(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    sinks.sms.state.fail_status = 503
    invited = await arrange_batch(owner_pool, 5, mediums=("EMAIL",), certificate=False)
    failing = await arrange_batch(owner_pool, 3, mediums=("SMS",), certificate=False)
    await publish_jobs(worker_settings, invited)
    await publish_jobs(worker_settings, failing)
    port = free_port()
    # worker_env turns the OpenTelemetry SDK off; metrics need it.
    env = {
        **worker_env(worker_settings),
        "CREDBATCH_METRICS_PORT": str(port),
        "OTEL_SDK_DISABLED": "false",
    }
    worker = subprocess.Popen([sys.executable, "-m", "workers.issuance"], env=env)
    try:
        assert await wait_for_batch(owner_pool, invited.batch_id) == "COMPLETED"
        assert await wait_for_batch(owner_pool, failing.batch_id) == "COMPLETED_WITH_ERRORS"
        await publish_jobs(worker_settings, invited)
        samples = await wait_for_sample(port, JOBS, {"credbatch_job_outcome": "skipped"}, minimum=5)
        # Settled after the last poll of the batch: wait for the dead letters' count too.
        samples = await wait_for_sample(
            port, JOBS, {"credbatch_job_outcome": "dead_letter"}, minimum=3
        )
        attempts = worker_settings.max_attempts
        assert _total(samples, JOBS, credbatch_job_outcome="ack") == 5
        assert _total(samples, JOBS, credbatch_job_outcome="retry") == 3 * (attempts - 1)
        assert _total(samples, JOBS, credbatch_job_outcome="dead_letter") == 3
        assert _total(samples, JOBS, credbatch_job_outcome="skipped") == 5

        transitions = "credbatch_record_transitions_total"
        assert _total(samples, transitions, credbatch_record_state="ISSUED") == 8
        assert _total(samples, transitions, credbatch_record_state="INVITED") == 5
        assert _total(samples, transitions, credbatch_record_state="FAILED") == 3

        sent = "credbatch_invitation_duration_seconds_count"
        assert _total(samples, sent, credbatch_invitation_channel="email") == 5
        assert _total(samples, sent, credbatch_invitation_channel="sms") == 3 * attempts
        (failures,) = find(samples, "credbatch_invitation_failures_total")
        labels = {k: v for k, v in failures.labels.items() if not k.startswith("otel_scope")}
        assert labels == {
            "credbatch_invitation_channel": "sms",
            "error_type": "SMS_TEMPORARY_FAILURE",
        }
        assert failures.value == 3 * attempts

        (in_flight,) = find(samples, "credbatch_worker_jobs_in_flight")
        assert in_flight.value == 0
        # Idle now: no slot busy, nothing buffered, no SMTP connection sending.
        (slots,) = find(samples, "credbatch_worker_slots_limit")
        group_size = max(1, min(50, worker_settings.worker_prefetch // 4))
        assert slots.value == max(1, worker_settings.worker_prefetch // group_size)
        for idle in ("slots_busy", "buffered"):
            (gauge,) = find(samples, f"credbatch_worker_{idle}")
            assert gauge.value == 0, idle
        (smtp_busy,) = find(samples, "credbatch_smtp_connections_busy")
        (smtp_limit,) = find(samples, "credbatch_smtp_connections_limit")
        assert (smtp_busy.value, smtp_limit.value) == (0, worker_settings.smtp_pool_size)
        # The 5 invited records, each within the hour of the SLO (le="3600.0").
        lead = "credbatch_record_upload_to_invited_seconds"
        assert _total(samples, f"{lead}_count") == 5
        assert _total(samples, f"{lead}_bucket", le="3600.0") == 5
        assert_serves_what_is_used(samples, "worker")
        # Labels never name a tenant, batch, record or recipient.
        for sample in samples:
            values = " ".join(sample.labels.values())
            assert str(invited.tenant_id) not in values
            assert "example.test" not in values
    finally:
        assert await stop_process(worker) == 0


async def test_a_worker_stalled_on_slow_smtp_reads_saturated(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    """Jobs arriving one by one on a relay that takes seconds to answer DATA: every group slot
    is busy (what CredbatchWorkersSaturated reads) while the jobs in flight are a few percent of
    the prefetch (what the alert read before, and stayed silent on)."""
    accept = sinks.smtp.handler.handle_DATA

    async def slow_data(server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(SLOW_SMTP_SECONDS)
        return await accept(server, session, envelope)

    sinks.smtp.handler.handle_DATA = slow_data  # type: ignore[method-assign]
    arranged = await arrange_batch(owner_pool, 12, mediums=("EMAIL",), certificate=False)
    port = free_port()
    env = {
        **worker_env(worker_settings),
        "CREDBATCH_METRICS_PORT": str(port),
        "OTEL_SDK_DISABLED": "false",
    }
    worker = subprocess.Popen([sys.executable, "-m", "workers.issuance"], env=env)
    try:
        samples = await wait_for_sample(port, "credbatch_worker_slots_limit")
        (limit,) = find(samples, "credbatch_worker_slots_limit")
        # One job at a time, as a relay dispatching a trickle publishes them: each fills a group
        # of its own, until no slot is left.
        for record_id in arranged.record_ids:
            one = Arranged(arranged.tenant_id, arranged.batch_id, [record_id])
            await publish_jobs(worker_settings, one)
        # The groups wait on the relay: SMTP connections are sending, every slot is busy and
        # jobs wait for one, while the jobs in flight are a few.
        await wait_for_sample(port, "credbatch_smtp_connections_busy", minimum=1)
        seen = []
        for _ in range(50):
            samples = await scrape(port)
            seen.append(
                tuple(
                    _total(samples, f"credbatch_worker_{name}")
                    for name in ("slots_busy", "buffered", "jobs_in_flight")
                )
            )
            busy, buffered, in_flight = seen[-1]
            if busy == limit.value and buffered >= 1:
                break
            await asyncio.sleep(0.1)
        assert (busy, limit.value) == (4, 4), seen
        assert buffered >= 1, seen
        assert in_flight <= 12 < 0.9 * worker_settings.worker_prefetch
        assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED"
    finally:
        sinks.smtp.handler.handle_DATA = accept  # type: ignore[method-assign]
        assert await stop_process(worker) == 0
