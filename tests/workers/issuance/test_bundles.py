"""Messages of several jobs: each job decided on its own, the message settled once for all.

Against the real broker and topology: a job to retry goes to its delay queue and a job to
dead-letter to the dead-letter queue, each as a message of its own, before the message is
acked; when they cannot be published the message is requeued whole; a body that does not
decode is rejected whole. And end to end: a worker given a batch in messages of ten invites
every holder once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import pytest_asyncio
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from credbatch.config import Settings
from credbatch.gen.jobs.v1 import issuance_job_pb2
from credbatch.messaging import (
    DEAD_QUEUE,
    DEAD_REASON_HEADER,
    JOBS_TYPE,
    WORK_QUEUE,
    ConfirmingPublisher,
    connect,
    declare_topology,
    retry_queue_for,
)
from tests.fixtures.batches import record_states
from tests.fixtures.issuance import (
    Sinks,
    arrange_batch,
    job_body,
    jobs_body,
    publish_jobs,
    running_worker,
    wait_for_batch,
)
from workers.issuance.acks import DeliveryLedger
from workers.issuance.job import Job, parse
from workers.issuance.outcomes import Decision, Outcome
from workers.issuance.settle import settle

TENANT, BATCH = uuid.uuid4(), uuid.uuid4()


@pytest_asyncio.fixture(loop_scope="session")
async def broker(
    db_settings: Settings, fresh_amqp_url: str
) -> AsyncIterator[tuple[Settings, AbstractRobustConnection]]:
    # Long delays: a retried job stays in its delay queue for the test to find.
    settings = db_settings.with_overrides(amqp_url=fresh_amqp_url, retry_delays=(600.0,))
    connection = await connect(settings)
    channel = await connection.channel()
    await declare_topology(channel, settings)
    await channel.close()
    try:
        yield settings, connection
    finally:
        await connection.close()


async def receive(
    connection: AbstractRobustConnection, body: bytes, message_type: str | None = JOBS_TYPE
) -> tuple[aio_pika.abc.AbstractChannel, AbstractIncomingMessage, DeliveryLedger]:
    """Publish ``body`` to the work queue and take it off again, unacked, on a channel of its
    own, noted in a ledger as the worker's consumer notes its deliveries."""
    channel = await connection.channel()
    await channel.default_exchange.publish(
        aio_pika.Message(body, type=message_type, message_id="bundle-1"), WORK_QUEUE
    )
    queue = await channel.get_queue(WORK_QUEUE)
    message = await queue.get(timeout=5)
    assert message is not None
    ledger = DeliveryLedger()
    ledger.received(message)
    return channel, message, ledger


async def take_all(
    connection: AbstractRobustConnection, queue: str
) -> list[AbstractIncomingMessage]:
    channel = await connection.channel()
    declared = await channel.get_queue(queue)
    taken = []
    while (message := await declared.get(fail=False, timeout=5)) is not None:
        await message.ack()
        taken.append(message)
    await channel.close()
    return taken


async def take_dead(
    connection: AbstractRobustConnection, count: int
) -> list[AbstractIncomingMessage]:
    """The dead-letter queue's messages once ``count`` are there: the broker dead-letters a
    rejected message on its own time, after the reject was written."""
    taken: list[AbstractIncomingMessage] = []
    async with asyncio.timeout(10):
        while len(taken) < count:
            taken += await take_all(connection, DEAD_QUEUE)
            await asyncio.sleep(0.02)
    return taken


def decided(jobs: list[Job], *outcomes: Decision) -> list[Job]:
    for job, decision in zip(jobs, outcomes, strict=True):
        job.decision = decision
    return jobs


def three_jobs_and_a_malformed_one() -> tuple[bytes, list[uuid.UUID]]:
    records = [uuid.uuid4() for _ in range(3)]
    bundle = issuance_job_pb2.IssuanceJobs.FromString(jobs_body(TENANT, BATCH, records))
    bundle.jobs.add(tenant_id=str(TENANT), batch_id=str(BATCH), record_id="not a uuid")
    return bundle.SerializeToString(), records


async def test_a_message_of_several_is_acked_once_its_retry_and_dead_jobs_are_out(
    broker: tuple[Settings, AbstractRobustConnection],
) -> None:
    settings, connection = broker
    body, records = three_jobs_and_a_malformed_one()
    channel, message, ledger = await receive(connection, body)
    jobs = parse(message)
    assert [j.target.record_id if j.target else None for j in jobs] == [*records, None]
    assert all(j.bundled and j.message is message for j in jobs)
    confirming = await connection.channel(publisher_confirms=True)
    decided(
        jobs,
        Decision(Outcome.ACK),
        Decision(Outcome.RETRY, 2),
        Decision(Outcome.DEAD_LETTER),
        Decision(Outcome.DEAD_LETTER),
    )
    await settle(jobs, ConfirmingPublisher(confirming), settings, ledger)
    await channel.close()  # anything left unacked would go back to the work queue

    assert await take_all(connection, WORK_QUEUE) == []
    retried = await take_all(connection, retry_queue_for(1, settings))
    assert [issuance_job_pb2.IssuanceJob.FromString(m.body).record_id for m in retried] == [
        str(records[1])
    ]
    assert issuance_job_pb2.IssuanceJob.FromString(retried[0].body).attempt == 2
    assert retried[0].type is None  # a message of one job
    dead = await take_all(connection, DEAD_QUEUE)
    assert sorted(m.message_id or "" for m in dead) == ["bundle-1#2", "bundle-1#3"]
    by_id = {m.message_id: issuance_job_pb2.IssuanceJob.FromString(m.body) for m in dead}
    assert by_id["bundle-1#2"].record_id == str(records[2])
    assert by_id["bundle-1#3"].record_id == "not a uuid"  # kept as it was sent
    assert all(m.headers[DEAD_REASON_HEADER] == "rejected" and m.type is None for m in dead)
    await confirming.close()


async def test_when_its_jobs_cannot_be_republished_the_message_is_requeued_whole(
    broker: tuple[Settings, AbstractRobustConnection],
) -> None:
    settings, connection = broker
    body, _ = three_jobs_and_a_malformed_one()
    channel, message, ledger = await receive(connection, body)
    jobs = parse(message)
    decided(
        jobs,
        Decision(Outcome.ACK),
        Decision(Outcome.ACK),
        Decision(Outcome.DEAD_LETTER),
        Decision(Outcome.DEAD_LETTER),
    )
    closed = await connection.channel(publisher_confirms=True)
    await closed.close()
    await settle(jobs, ConfirmingPublisher(closed), settings, ledger)
    await channel.close()

    assert await take_all(connection, DEAD_QUEUE) == []
    back = await take_all(connection, WORK_QUEUE)
    assert [(m.body, m.type, m.redelivered) for m in back] == [(body, JOBS_TYPE, True)]


async def test_a_message_of_several_that_does_not_decode_is_dead_lettered_whole(
    broker: tuple[Settings, AbstractRobustConnection],
) -> None:
    settings, connection = broker
    for body in (b"\x0a\xff\x01 truncated", b""):
        channel, message, ledger = await receive(connection, body)
        jobs = parse(message)
        assert [j.target for j in jobs] == [None]
        decided(jobs, Decision(Outcome.DEAD_LETTER))
        confirming = await connection.channel(publisher_confirms=True)
        await settle(jobs, ConfirmingPublisher(confirming), settings, ledger)
        await channel.close()
        await confirming.close()
        dead = await take_dead(connection, 1)
        assert [(m.body, m.type, m.message_id) for m in dead] == [(body, JOBS_TYPE, "bundle-1")]
        assert dead[0].headers["x-first-death-reason"] == "rejected"
    assert await take_all(connection, WORK_QUEUE) == []


async def test_a_message_of_one_job_is_still_rejected_to_dead_letter_it(
    broker: tuple[Settings, AbstractRobustConnection],
) -> None:
    settings, connection = broker
    body = job_body(TENANT, BATCH, uuid.uuid4())
    channel, message, ledger = await receive(connection, body, message_type=None)
    jobs = decided(parse(message), Decision(Outcome.DEAD_LETTER))
    assert not jobs[0].bundled
    confirming = await connection.channel(publisher_confirms=True)
    await settle(jobs, ConfirmingPublisher(confirming), settings, ledger)
    await channel.close()
    await confirming.close()
    dead = await take_dead(connection, 1)
    assert [(m.body, m.message_id) for m in dead] == [(body, "bundle-1")]
    assert dead[0].headers["x-first-death-reason"] == "rejected"


async def test_a_worker_given_a_batch_ten_jobs_to_a_message_invites_each_holder_once(
    worker_settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks
) -> None:
    arranged = await arrange_batch(owner_pool, 45, mediums=("EMAIL",), certificate=False)
    await publish_jobs(worker_settings, arranged, per_message=10)
    async with running_worker(worker_settings):
        assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED"
    assert await record_states(owner_pool, arranged.batch_id) == {"INVITED": 45}
    wanted = {row["email"] for row in arranged.rows}
    mails = Counter(r for recipients, _ in sinks.smtp.messages for r in recipients if r in wanted)
    assert mails == Counter(dict.fromkeys(wanted, 1))
    connection = await connect(worker_settings)
    try:
        assert await take_all(connection, WORK_QUEUE) == []
        assert await take_all(connection, DEAD_QUEUE) == []
    finally:
        await connection.close()
