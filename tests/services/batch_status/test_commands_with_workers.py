"""CancelBatch and RetryFailedRecords against the real issuance worker, relay and SMTP sink.

test_commands.py proves the same lines with a simulated worker; here the jobs are consumed by
``workers.issuance`` (its ``serve`` in this event loop, as tests/workers/issuance runs it),
invitations go to the aiosmtpd sink of credbatch/devsinks, retried records are published by
the real OutboxRelay with publisher confirms, and the commands go through the real
BatchStatusService over gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlparse

import asyncpg
import pytest

from credbatch.config import Settings
from credbatch.db.pool import create_pool
from credbatch.gen.batches.v1 import batch_pb2, batches_service_pb2
from credbatch.messaging import WORK_QUEUE, ConfirmingPublisher, connect, declare_topology
from tests.fixtures.batches import record_states
from tests.fixtures.grpc import bearer
from tests.fixtures.issuance import (
    Sinks,
    arrange_batch,
    publish_jobs,
    running_worker,
    wait_for_batch,
)
from workers.relay.relay import OutboxRelay

CANCEL_RECORDS = 2000


def mailed_to(sinks: Sinks, addresses: set[str]) -> list[str]:
    """Recipients the sink got mail for among `addresses` (other tests' mail is left out)."""
    return [rcpts[0] for rcpts, _ in sinks.smtp.messages if rcpts[0] in addresses]


def queued_messages(amqp_url: str, queue: str = WORK_QUEUE) -> int:
    """Ready plus unacknowledged messages of a queue, as the broker counts them."""
    vhost = unquote(urlparse(amqp_url).path.lstrip("/"))
    out = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "--no-table-headers", "name", "messages"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    for line in out.splitlines():
        name, _, count = line.partition("\t")
        if name == queue:
            return int(count)
    raise AssertionError(f"queue {queue} not found in {out!r}")


async def wait_until_drained(amqp_url: str, timeout: float = 120) -> None:
    """Until the work queue holds no job, delivered or not: the worker handled every one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (left := await asyncio.to_thread(queued_messages, amqp_url)) != 0:
        assert loop.time() < deadline, f"{left} jobs still on the work queue"
        await asyncio.sleep(0.2)


async def credential_count(owner_pool: asyncpg.Pool, batch_id: uuid.UUID) -> int:
    count: int = await owner_pool.fetchval(
        "SELECT count(*) FROM credentials WHERE batch_id = $1", batch_id
    )
    return count


@contextlib.asynccontextmanager
async def running_relay(settings: Settings) -> AsyncIterator[None]:
    """The real OutboxRelay (what ``python -m workers.relay`` runs) in this event loop."""
    pool = await create_pool(
        settings.relay_database_url,
        max_size=2,
        statement_cache_size=settings.pools.statement_cache_size,
        application_name="relay",
    )
    connection = await connect(settings, name="credbatch-tests-relay")
    stop = asyncio.Event()
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, settings)
        relay = OutboxRelay(pool, ConfirmingPublisher(channel), window=200, poll_interval=0.1)
        task = asyncio.create_task(relay.run(stop))
        try:
            yield
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
    finally:
        await connection.close()
        await pool.close()


async def test_cancel_while_the_worker_runs_issues_nothing_after_the_cancel_committed(
    batches_stub: Any,
    settings: Settings,
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    sinks: Sinks,
) -> None:
    arranged = await arrange_batch(owner_pool, CANCEL_RECORDS, mediums=("EMAIL", "SMS"))
    batch_id = arranged.batch_id
    name = f"batches/{batch_id}"
    md = bearer(settings, arranged.tenant_id, "root", ["org_admin"])
    await publish_jobs(worker_settings, arranged)

    async with running_worker(worker_settings):
        # Cancel once the worker is well into the batch, far from its end.
        for _ in range(1200):
            if await credential_count(owner_pool, batch_id) >= 200:
                break
            await asyncio.sleep(0.05)
        cancelled = await batches_stub.CancelBatch(
            batches_service_pb2.CancelBatchRequest(name=name), metadata=md
        )
        # The cancel has committed before its response left the server: the database clock
        # read now is an upper bound of its commit time, and the credentials seen now include
        # every one committed before it (same clock as credentials.created_at, microseconds).
        snapshot = await owner_pool.fetchrow(
            "SELECT clock_timestamp() AS acknowledged,"
            " coalesce(array_agg(id), '{}') AS ids FROM credentials WHERE batch_id = $1",
            batch_id,
        )
        acknowledged: datetime = snapshot["acknowledged"]
        at_cancel = set(snapshot["ids"])
        assert cancelled.state == batch_pb2.BATCH_STATE_CANCELLED
        assert cancelled.record_counts.cancelled > CANCEL_RECORDS // 4, "cancelled too late"
        # The jobs of the cancelled records are still on the queue: let the worker meet them.
        await wait_until_drained(worker_settings.amqp_url)

    assert 200 <= len(at_cancel) < CANCEL_RECORDS
    credentials = await owner_pool.fetch(
        "SELECT c.id, c.record_id, c.created_at, r.state, r.issued_at"
        " FROM credentials c JOIN records r ON r.tenant_id = c.tenant_id AND r.id = c.record_id"
        " WHERE c.batch_id = $1",
        batch_id,
    )
    assert {c["id"] for c in credentials} == at_cancel, "a credential appeared after the cancel"
    late = [c for c in credentials if c["created_at"] > acknowledged]
    assert late == [], f"{len(late)} credentials created after the cancel committed"
    assert max(c["issued_at"] for c in credentials) <= acknowledged
    assert len({c["record_id"] for c in credentials}) == len(credentials), "issued twice"

    states = await record_states(owner_pool, batch_id)
    # Records issued before the cancel keep their credential. They get their invitation, except
    # those whose worker read the batch only after the cancel committed: no invitation leaves
    # after a cancel, so they end CANCELLED with their credential. Every record that was PENDING
    # or QUEUED is CANCELLED and has none.
    assert set(states) == {"INVITED", "CANCELLED"}, states
    assert {c["state"] for c in credentials} <= {"INVITED", "CANCELLED"}
    issued_then_cancelled = sum(1 for c in credentials if c["state"] == "CANCELLED")
    assert states["INVITED"] + issued_then_cancelled == len(credentials)
    assert states["INVITED"] > 0, "no record issued before the cancel was invited"
    # The response counted those records ISSUED or already CANCELLED, depending on when their
    # worker read the batch; every other record it counted is where it stayed.
    at_response = cancelled.record_counts
    assert at_response.invited <= states["INVITED"]
    assert at_response.invited + at_response.issued + at_response.cancelled == (
        states["INVITED"] + states["CANCELLED"]
    )
    assert states["CANCELLED"] - issued_then_cancelled <= at_response.cancelled
    assert at_response.cancelled <= states["CANCELLED"]
    invited = {
        r["email"]
        for r in await owner_pool.fetch(
            "SELECT email FROM records WHERE batch_id = $1 AND state = 'INVITED'", batch_id
        )
    }
    mailed = mailed_to(sinks, {row["email"] for row in arranged.rows})
    assert sorted(mailed) == sorted(invited), "an invitation went to a cancelled record"

    after = await batches_stub.GetBatch(batches_service_pb2.GetBatchRequest(name=name), metadata=md)
    assert after.state == batch_pb2.BATCH_STATE_CANCELLED
    assert after.record_counts.cancelled == states["CANCELLED"]
    assert after.record_counts.invited == states["INVITED"]
    assert after.record_counts.pending == after.record_counts.queued == 0


@pytest.mark.parametrize("fault", ["permanent", "temporary"])
async def test_retry_after_the_smtp_fault_is_gone_invites_every_failed_record(
    fault: str,
    batches_stub: Any,
    settings: Settings,
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    sinks: Sinks,
) -> None:
    count = 40
    arranged = await arrange_batch(owner_pool, count, mediums=("EMAIL",), certificate=False)
    batch_id = arranged.batch_id
    name = f"batches/{batch_id}"
    md = bearer(settings, arranged.tenant_id, "root", ["org_admin"])
    emails = [row["email"] for row in arranged.rows]
    if fault == "permanent":
        # The mail server refuses every fourth holder's mailbox (550).
        refused = set(emails[::4])
        for email in refused:
            sinks.smtp.handler.refuse[email] = "Mailbox unavailable"
        expected_code = "SMTP_REJECTED"
    else:
        # The mail server answers 451 to everyone until the worker's attempts are used up.
        refused = set(emails)
        sinks.smtp.handler.temporary_failure = True
        expected_code = "SMTP_TEMPORARY_FAILURE"
    await publish_jobs(worker_settings, arranged)

    async with running_worker(worker_settings), running_relay(worker_settings):
        assert await wait_for_batch(owner_pool, batch_id) == "COMPLETED_WITH_ERRORS"
        failed = await owner_pool.fetch(
            "SELECT r.email, r.error_code, c.id AS credential_id FROM records r"
            " JOIN credentials c ON c.tenant_id = r.tenant_id AND c.record_id = r.id"
            " WHERE r.batch_id = $1 AND r.state = 'FAILED'",
            batch_id,
        )
        assert {r["email"] for r in failed} == refused
        assert {r["error_code"] for r in failed} == {expected_code}
        before = await batches_stub.GetBatch(
            batches_service_pb2.GetBatchRequest(name=name), metadata=md
        )
        assert before.record_counts.failed == len(refused)
        assert before.record_counts.invited == count - len(refused)
        assert len(mailed_to(sinks, set(emails))) == count - len(refused)

        # The fault is gone; the retry puts the failed records back in the outbox, the relay
        # publishes them, the worker re-sends their invitations.
        sinks.smtp.handler.refuse.clear()
        sinks.smtp.handler.temporary_failure = False
        retried = await batches_stub.RetryFailedRecords(
            batches_service_pb2.RetryFailedRecordsRequest(name=name), metadata=md
        )
        assert retried.state == batch_pb2.BATCH_STATE_IN_PROGRESS
        assert retried.record_counts.failed == 0
        assert await wait_for_batch(owner_pool, batch_id) == "COMPLETED"
        await wait_until_drained(worker_settings.amqp_url)

    assert await record_states(owner_pool, batch_id) == {"INVITED": count}
    credentials = await owner_pool.fetch(
        "SELECT id, record_id FROM credentials WHERE batch_id = $1", batch_id
    )
    # Exactly one credential per record, and a failed record kept the one it had.
    assert len(credentials) == count
    assert len({c["record_id"] for c in credentials}) == count
    assert {r["credential_id"] for r in failed} <= {c["id"] for c in credentials}
    cleared = await owner_pool.fetchval(
        "SELECT count(*) FROM records WHERE batch_id = $1 AND error_code IS NULL"
        " AND email_sent_at IS NOT NULL",
        batch_id,
    )
    assert cleared == count
    # Each holder got exactly one invitation: the retried ones once, after the fault.
    assert sorted(mailed_to(sinks, set(emails))) == sorted(emails)
    after = await batches_stub.GetBatch(batches_service_pb2.GetBatchRequest(name=name), metadata=md)
    assert after.state == batch_pb2.BATCH_STATE_COMPLETED
    assert after.record_counts.invited == count and after.record_counts.failed == 0
