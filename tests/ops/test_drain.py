"""Draining a worker (docs/operations.md, "Draining and stopping"): SIGTERM while a slow SMTP
server is still answering; the sends in flight finish within the grace, their jobs are acked,
nothing is redelivered, and the rest waits in the queue for the next worker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import asyncpg
from aiosmtpd.smtp import SMTP, Envelope, Session

from credbatch.config import Settings
from credbatch.devsinks.smtp import SinkHandler, SmtpSink
from credbatch.messaging import WORK_QUEUE, connect, declare_topology
from tests.fixtures.batches import record_states
from tests.fixtures.issuance import (
    Sinks,
    arrange_batch,
    publish_jobs,
    stop_process,
    wait_for_batch,
    worker_env,
)

# Each message's end-of-data reply comes this late: below the SMTP timeout, so every send
# succeeds, and as long as most of the grace.
REPLY_DELAY = 2.5
PREFETCH = 4


class SlowHandler(SinkHandler):
    """Accepts every message, REPLY_DELAY seconds after its data arrived."""

    def __init__(self) -> None:
        super().__init__(None)
        self.begun = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.begun += 1
        await asyncio.sleep(REPLY_DELAY)
        return await super().handle_DATA(server, session, envelope)


def _spawn(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = worker_env(settings)
    env.update(
        CREDBATCH_WORKER_PREFETCH=str(PREFETCH),
        CREDBATCH_WORKER_CONCURRENCY=str(PREFETCH),
        CREDBATCH_SMTP_POOL_SIZE=str(PREFETCH),
        CREDBATCH_LOG_LEVEL="INFO",
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "workers.issuance"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )


async def _ready_in_queue(settings: Settings) -> int:
    connection = await connect(settings)
    try:
        channel = await connection.channel()
        await declare_topology(channel, settings)
        queue = await channel.declare_queue(WORK_QUEUE, passive=True)
        return int(queue.declaration_result.message_count or 0)
    finally:
        await connection.close()


async def test_sigterm_lets_a_slow_send_finish_and_redelivers_nothing(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks, tmp_path: Path
) -> None:
    handler = SlowHandler()
    slow = SmtpSink()
    slow.handler = handler
    await slow.start()
    settings = worker_settings.with_overrides(
        smtp_port=slow.port, grace_seconds=REPLY_DELAY + 2.5, smtp_timeout=REPLY_DELAY + 1
    )
    total = 12
    arranged = await arrange_batch(owner_pool, total, mediums=("EMAIL",), certificate=False)
    await publish_jobs(settings, arranged)
    log = tmp_path / "worker.log"
    worker = _spawn(settings, log)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while handler.begun == 0 and loop.time() < deadline:
            await asyncio.sleep(0.02)
        assert handler.begun > 0, log.read_text()
        # Every send the worker holds has begun and waits on its reply.
        signalled = loop.time()
        assert await stop_process(worker) == 0, log.read_text()
        drained_in = loop.time() - signalled
        stderr = log.read_text()
        assert "still running at the end of the grace period" not in stderr
        assert drained_in < settings.grace_seconds + 2, drained_in

        # The sends begun were finished and recorded; nothing is left half-way.
        states = await record_states(owner_pool, arranged.batch_id)
        invited = states.get("INVITED", 0)
        assert invited == handler.begun == len(handler.messages) == PREFETCH, states
        assert states == {"INVITED": invited, "QUEUED": total - invited}
        # Acked, not returned: only the jobs never delivered to the worker are queued.
        assert await _ready_in_queue(settings) == total - invited

        worker = _spawn(settings, tmp_path / "worker2.log")
        assert await wait_for_batch(owner_pool, arranged.batch_id, timeout=120) == "COMPLETED"
    finally:
        await stop_process(worker)
        await slow.stop()
    recipients = sorted(rcpt[0] for rcpt, _ in handler.messages)
    assert recipients == sorted(r["email"] for r in arranged.rows)


def test_a_worker_refuses_a_grace_its_slowest_send_would_outlast(
    worker_settings: Settings,
) -> None:
    env = worker_env(worker_settings)
    env.update(CREDBATCH_GRACE_SECONDS="10", CREDBATCH_SMTP_TIMEOUT="10")
    done = subprocess.run(
        [sys.executable, "-m", "workers.issuance"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "CREDBATCH_GRACE_SECONDS (10) must be at least CREDBATCH_SMTP_TIMEOUT (10)" in (
        done.stderr
    )
