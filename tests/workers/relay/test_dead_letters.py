"""Dead letters: a job's record fails (DEAD_LETTERED) and its batch completes; what maps to no
record is parked, as it came, in ``credbatch.issuance.parked``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import pytest_asyncio
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from credbatch.config import Settings
from credbatch.gen.jobs.v1 import issuance_job_pb2
from credbatch.messaging import (
    DEAD_LETTER_EXCHANGE,
    DEAD_QUEUE,
    DEAD_REASON_HEADER,
    DEAD_ROUTING_KEY,
    JOBS_TYPE,
    PARKED_QUEUE,
    WORK_QUEUE,
    connect,
    declare_topology,
)
from tests.fixtures.batches import insert_batch
from tests.fixtures.issuance import job_body, jobs_body
from workers.relay.dead_letters import PARKED_REASON_HEADER, DeadLetterConsumer, death_reason


async def dead_letter(settings: Settings, body: bytes) -> None:
    connection = await connect(settings)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, settings)
        exchange = await channel.get_exchange(DEAD_LETTER_EXCHANGE)
        await exchange.publish(aio_pika.Message(body), DEAD_ROUTING_KEY, mandatory=True)
    finally:
        await connection.close()


async def rejected_by_a_worker(settings: Settings, message: aio_pika.Message) -> None:
    """Through the work queue and out by reject(requeue=False), as a worker dead-letters a job:
    the broker adds its x-death headers on the way."""
    connection = await connect(settings)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, settings)
        await channel.default_exchange.publish(message, WORK_QUEUE, mandatory=True)
        queue = await channel.get_queue(WORK_QUEUE)
        taken = await queue.get(timeout=5)
        assert taken is not None
        await taken.reject(requeue=False)
    finally:
        await connection.close()


async def wait_for(owner: asyncpg.Pool, sql: str, *args: object, want: object) -> object:
    value: object = None
    for _ in range(200):
        value = await owner.fetchval(sql, *args)
        if value == want:
            return value
        await asyncio.sleep(0.05)
    return value


async def batch_state(owner: asyncpg.Pool, batch_id: uuid.UUID) -> object:
    """The batch's state once it is COMPLETED_WITH_ERRORS, or as it is after 10 s."""
    return await wait_for(
        owner, "SELECT state FROM batches WHERE id = $1", batch_id, want="COMPLETED_WITH_ERRORS"
    )


async def take_parked(settings: Settings) -> AbstractIncomingMessage:
    """The next parked message (acked: the queue is this test's own vhost's)."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(PARKED_QUEUE)
        for _ in range(100):
            message = await queue.get(fail=False)
            if message is not None:
                await message.ack()
                return message
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    raise AssertionError("nothing was parked")


async def depth(settings: Settings, name: str) -> int:
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result.message_count or 0
    finally:
        await connection.close()


@pytest_asyncio.fixture(loop_scope="session")
async def dead_settings(db_settings: Settings, fresh_amqp_url: str) -> Settings:
    return db_settings.with_overrides(amqp_url=fresh_amqp_url)


@pytest_asyncio.fixture(loop_scope="session")
async def consumer(
    dead_settings: Settings, app_pool: asyncpg.Pool
) -> AsyncIterator[DeadLetterConsumer]:
    connection: AbstractRobustConnection = await connect(dead_settings)
    running = DeadLetterConsumer(dead_settings, app_pool, retry_pause=0.1)
    try:
        await running.start(connection)
        yield running
    finally:
        await running.stop()
        await connection.close()


async def test_dead_letter_fails_the_record_and_completes_the_batch(
    owner_pool: asyncpg.Pool, dead_settings: Settings, consumer: DeadLetterConsumer
) -> None:
    arranged = await insert_batch(
        owner_pool, states=["INVITED", "ISSUED", "INVITED"], batch_state="IN_PROGRESS"
    )
    lost = arranged.record_ids[1]
    # One the consumer cannot read, then the real one: the first is parked, not stuck.
    await dead_letter(dead_settings, b"\xff not a job")
    await dead_letter(dead_settings, job_body(arranged.tenant_id, arranged.batch_id, lost))
    assert await batch_state(owner_pool, arranged.batch_id) == "COMPLETED_WITH_ERRORS"
    row = await owner_pool.fetchrow("SELECT state, error_code FROM records WHERE id = $1", lost)
    assert tuple(row) == ("FAILED", "DEAD_LETTERED")
    # A dead letter for a finished record changes nothing, and is not parked: it is known.
    await dead_letter(
        dead_settings, job_body(arranged.tenant_id, arranged.batch_id, arranged.record_ids[0])
    )
    await asyncio.sleep(0.5)
    first = await owner_pool.fetchval(
        "SELECT state FROM records WHERE id = $1", arranged.record_ids[0]
    )
    assert first == "INVITED"
    assert (await take_parked(dead_settings)).body == b"\xff not a job"
    assert await depth(dead_settings, PARKED_QUEUE) == 0
    assert await depth(dead_settings, DEAD_QUEUE) == 0


async def test_a_dead_reminder_gives_its_step_up_and_leaves_the_record_invited(
    owner_pool: asyncpg.Pool, dead_settings: Settings, consumer: DeadLetterConsumer
) -> None:
    arranged = await insert_batch(owner_pool, states=["INVITED"], batch_state="COMPLETED")
    [record] = arranged.record_ids
    await owner_pool.execute(
        "UPDATE batches SET reminder_days = '{1}' WHERE id = $1", arranged.batch_id
    )
    # Published a day ahead of time: no relay of another test claims it meanwhile.
    await owner_pool.execute(
        "INSERT INTO record_reminders (tenant_id, record_id, batch_id, step, due_at, queued_at)"
        " VALUES ($1, $2, $3, 1, now() + interval '1 day', now())",
        arranged.tenant_id,
        record,
        arranged.batch_id,
    )
    job = issuance_job_pb2.IssuanceJob(
        tenant_id=str(arranged.tenant_id),
        batch_id=str(arranged.batch_id),
        record_id=str(record),
        attempt=4,
        kind=issuance_job_pb2.JOB_KIND_REMINDER,
        reminder_step=1,
    )
    await dead_letter(dead_settings, job.SerializeToString())
    # The last step given up: the schedule ends, nothing sent; the record is untouched.
    step = await wait_for(
        owner_pool, "SELECT step FROM record_reminders WHERE record_id = $1", record, want=2
    )
    assert step == 2
    row = await owner_pool.fetchrow(
        "SELECT due_at, queued_at, sent FROM record_reminders WHERE record_id = $1", record
    )
    assert tuple(row) == (None, None, 0)
    assert await owner_pool.fetchval("SELECT state FROM records WHERE id = $1", record) == "INVITED"
    assert await depth(dead_settings, DEAD_QUEUE) == 0
    assert await depth(dead_settings, PARKED_QUEUE) == 0


async def test_malformed_dead_letter_is_parked_with_its_body_and_headers(
    dead_settings: Settings, consumer: DeadLetterConsumer
) -> None:
    body = b"\x08\x96\x01 truncated \xff"
    sent = aio_pika.Message(
        body,
        headers={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01", "x-app": "probe"},
        content_type="application/x-protobuf",
        message_id="m-1",
        correlation_id="c-1",
        type="credbatch.jobs.v1.IssuanceJob",
    )
    await rejected_by_a_worker(dead_settings, sent)
    parked = await take_parked(dead_settings)
    assert parked.body == body
    assert parked.message_id == "m-1"
    assert parked.correlation_id == "c-1"
    assert parked.content_type == "application/x-protobuf"
    assert parked.type == "credbatch.jobs.v1.IssuanceJob"
    headers = parked.headers
    assert headers["traceparent"] == sent.headers["traceparent"]
    assert headers["x-app"] == "probe"
    assert headers[PARKED_REASON_HEADER] == "malformed"
    # The broker's account of the first dead-lettering travels with it.
    assert headers["x-first-death-reason"] == "rejected"
    assert headers["x-first-death-queue"] == WORK_QUEUE
    deaths = headers["x-death"]
    assert isinstance(deaths, list) and len(deaths) == 1
    assert isinstance(deaths[0], dict) and deaths[0]["reason"] == "rejected"
    assert await depth(dead_settings, DEAD_QUEUE) == 0


async def test_job_naming_no_record_is_parked_and_provisions_no_tenant(
    owner_pool: asyncpg.Pool, dead_settings: Settings, consumer: DeadLetterConsumer
) -> None:
    tenant, batch, record = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    body = job_body(tenant, batch, record)
    await dead_letter(dead_settings, body)
    parked = await take_parked(dead_settings)
    assert parked.body == body
    assert parked.headers[PARKED_REASON_HEADER] == "unknown_record"
    assert await owner_pool.fetchval("SELECT count(*) FROM tenants WHERE id = $1", tenant) == 0

    # A record of another batch of a real tenant is no record of this one either.
    arranged = await insert_batch(owner_pool, states=["QUEUED"], batch_state="IN_PROGRESS")
    await dead_letter(dead_settings, job_body(arranged.tenant_id, batch, arranged.record_ids[0]))
    assert (await take_parked(dead_settings)).headers[PARKED_REASON_HEADER] == "unknown_record"
    state = await owner_pool.fetchval(
        "SELECT state FROM records WHERE id = $1", arranged.record_ids[0]
    )
    assert state == "QUEUED"


async def test_redelivery_completes_a_batch_an_earlier_relay_left_open(
    owner_pool: asyncpg.Pool, dead_settings: Settings, consumer: DeadLetterConsumer
) -> None:
    """A relay that died after failing the record, before completing the batch: the message is
    redelivered, the record is already FAILED, and the batch is completed now."""
    arranged = await insert_batch(
        owner_pool,
        states=["INVITED", "FAILED"],
        errors=[(None, None), ("DEAD_LETTERED", "the job was dead-lettered by the broker")],
        batch_state="IN_PROGRESS",
    )
    await dead_letter(
        dead_settings, job_body(arranged.tenant_id, arranged.batch_id, arranged.record_ids[1])
    )
    assert await batch_state(owner_pool, arranged.batch_id) == "COMPLETED_WITH_ERRORS"


async def test_two_consumers_share_the_dead_letters_each_settled_once(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool, dead_settings: Settings
) -> None:
    """Two relays' consumers on one dead-letter queue: every record FAILED, nothing parked."""
    arranged = await insert_batch(owner_pool, states=["QUEUED"] * 20, batch_state="IN_PROGRESS")
    connection = await connect(dead_settings)
    consumers = [DeadLetterConsumer(dead_settings, app_pool, prefetch=2) for _ in range(2)]
    try:
        for each in consumers:
            await each.start(connection)
        for record_id in arranged.record_ids:
            await dead_letter(
                dead_settings, job_body(arranged.tenant_id, arranged.batch_id, record_id)
            )
        assert await batch_state(owner_pool, arranged.batch_id) == "COMPLETED_WITH_ERRORS"
    finally:
        for each in consumers:
            await each.stop()
        await connection.close()
    failed = await owner_pool.fetchval(
        "SELECT count(*) FROM records WHERE batch_id = $1 AND error_code = 'DEAD_LETTERED'",
        arranged.batch_id,
    )
    assert failed == 20
    assert await depth(dead_settings, PARKED_QUEUE) == 0
    assert await depth(dead_settings, DEAD_QUEUE) == 0


def test_death_reason_is_the_brokers_or_unknown() -> None:
    assert death_reason({"x-first-death-reason": "rejected"}) == "rejected"
    assert death_reason({"x-first-death-reason": b"delivery_limit"}) == "delivery_limit"
    # A header anyone could set is not repeated into the log as if the broker had said it.
    assert death_reason({"x-first-death-reason": "anything else"}) == "unknown"
    assert death_reason({}) == "unknown"
    assert death_reason(None) == "unknown"


async def test_a_message_of_several_jobs_fails_each_of_its_records(
    owner_pool: asyncpg.Pool, dead_settings: Settings, consumer: DeadLetterConsumer
) -> None:
    arranged = await insert_batch(
        owner_pool, states=["QUEUED", "ISSUED", "INVITED", "QUEUED"], batch_state="IN_PROGRESS"
    )
    foreign = uuid.uuid4()  # no record of the batch: parked, alone
    ids = [*arranged.record_ids, foreign]
    # As the broker dead-letters a message whose delivery limit was exceeded.
    sent = aio_pika.Message(
        jobs_body(arranged.tenant_id, arranged.batch_id, ids),
        headers={"traceparent": "00-" + "3" * 32 + "-" + "4" * 16 + "-01"},
        message_id=f"{ids[0]}+{len(ids)}",
        type=JOBS_TYPE,
    )
    await rejected_by_a_worker(dead_settings, sent)
    assert await batch_state(owner_pool, arranged.batch_id) == "COMPLETED_WITH_ERRORS"
    rows = await owner_pool.fetch(
        "SELECT id, state, error_code FROM records WHERE batch_id = $1", arranged.batch_id
    )
    by_id = {r["id"]: (r["state"], r["error_code"]) for r in rows}
    assert [by_id[i] for i in arranged.record_ids] == [
        ("FAILED", "DEAD_LETTERED"),
        ("FAILED", "DEAD_LETTERED"),
        ("INVITED", None),  # finished: keeps its outcome
        ("FAILED", "DEAD_LETTERED"),
    ]
    parked = await take_parked(dead_settings)
    assert parked.headers[PARKED_REASON_HEADER] == "unknown_record"
    assert issuance_job_pb2.IssuanceJob.FromString(parked.body).record_id == str(foreign)
    assert parked.message_id == f"{ids[0]}+{len(ids)}#4"
    # The broker's account and the trace context travel with each job.
    assert parked.headers["x-first-death-reason"] == "rejected"
    assert parked.headers["traceparent"] == sent.headers["traceparent"]
    assert await depth(dead_settings, DEAD_QUEUE) == 0
    assert await depth(dead_settings, PARKED_QUEUE) == 0


async def test_a_message_of_several_jobs_that_does_not_decode_is_parked_whole(
    dead_settings: Settings, consumer: DeadLetterConsumer
) -> None:
    for body in (b"\x0a\xff\x01 truncated", b""):
        sent = aio_pika.Message(body, message_id="bundle-1", type=JOBS_TYPE)
        await rejected_by_a_worker(dead_settings, sent)
        parked = await take_parked(dead_settings)
        assert (parked.body, parked.type) == (body, JOBS_TYPE)
        assert parked.headers[PARKED_REASON_HEADER] == "malformed"
    assert await depth(dead_settings, DEAD_QUEUE) == 0


def test_death_reason_of_a_job_a_worker_dead_lettered_alone() -> None:
    assert death_reason({DEAD_REASON_HEADER: "rejected"}) == "rejected"
    # The broker's own account wins where both are present.
    reasons = {"x-first-death-reason": "delivery_limit", DEAD_REASON_HEADER: "rejected"}
    assert death_reason(reasons) == "delivery_limit"
