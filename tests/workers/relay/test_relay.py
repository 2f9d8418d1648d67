"""OutboxRelay against the real PostgreSQL and RabbitMQ: one confirmed job per record."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Sequence

import asyncpg
from aio_pika.abc import AbstractQueue, AbstractRobustChannel
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from credbatch.gen.jobs.v1 import issuance_job_pb2
from credbatch.messaging import ConfirmingPublisher, OutgoingMessage, PublishError, Topology
from tests.fixtures.batches import record_states
from tests.fixtures.relay import TRACEPARENT, MakePending
from workers.relay.relay import OutboxRelay, WindowResult


async def drain(
    queue: AbstractQueue,
) -> list[tuple[issuance_job_pb2.IssuanceJob, dict[str, object]]]:
    """Every message now on the queue (acknowledged), parsed."""
    jobs: list[tuple[issuance_job_pb2.IssuanceJob, dict[str, object]]] = []
    while True:
        message = await queue.get(no_ack=True, fail=False, timeout=5)
        if message is None:
            return jobs
        job = issuance_job_pb2.IssuanceJob.FromString(message.body)
        jobs.append((job, dict(message.headers)))


async def test_each_pending_record_becomes_one_job_and_queued(
    relay_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    amqp_channel: AbstractRobustChannel,
    topology: Topology,
    make_pending: MakePending,
    spans: InMemorySpanExporter,
) -> None:
    batch = await make_pending(1234)
    relay = OutboxRelay(relay_pool, ConfirmingPublisher(amqp_channel), window=500)
    while (await relay.relay_window()).claimed:
        pass

    assert await record_states(owner_pool, batch.batch_id) == {"QUEUED": 1234}
    jobs = [
        (j, h) for j, h in await drain(topology.work_queue) if j.batch_id == str(batch.batch_id)
    ]
    counts = Counter(job.record_id for job, _ in jobs)
    assert set(counts) == {str(r) for r in batch.record_ids}
    assert set(counts.values()) == {1}
    job, headers = jobs[0]
    assert job.tenant_id == str(batch.tenant_id)
    assert job.attempt == 1
    # The worker's span will join the upload's trace.
    assert headers["traceparent"] == TRACEPARENT
    publish = [s for s in spans.get_finished_spans() if s.name.endswith(" publish")]
    assert publish and all(
        s.attributes and s.attributes["messaging.batch.message_count"] for s in publish
    )
    assert any(
        link.context.trace_id == int(TRACEPARENT.split("-")[1], 16)
        for span in publish
        for link in span.links
    )


async def test_nothing_to_do_is_a_cheap_empty_window(
    relay_pool: asyncpg.Pool, amqp_channel: AbstractRobustChannel, topology: Topology
) -> None:
    relay = OutboxRelay(relay_pool, ConfirmingPublisher(amqp_channel))
    while (await relay.relay_window()).claimed:
        pass
    result = await relay.relay_window()
    assert (result.claimed, result.queued) == (0, 0)


class _HalfConfirming:
    """A publisher whose broker confirms only every other message of a window."""

    def __init__(self, inner: ConfirmingPublisher) -> None:
        self.inner = inner
        self.windows: list[int] = []

    async def publish_many(self, messages: Sequence[OutgoingMessage], timeout: float) -> None:
        self.windows.append(len(messages))
        kept = list(messages[::2])
        await self.inner.publish_many(kept, timeout)
        lost = [m.message_id for m in messages[1::2]]
        if lost:
            raise PublishError(total=len(messages), timed_out=lost)


async def test_unconfirmed_jobs_stay_pending_and_go_out_in_a_later_window(
    relay_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    amqp_channel: AbstractRobustChannel,
    topology: Topology,
    make_pending: MakePending,
) -> None:
    batch = await make_pending(10)
    half = _HalfConfirming(ConfirmingPublisher(amqp_channel))
    relay = OutboxRelay(relay_pool, half, window=10)
    first = await relay.relay_window()
    assert first.claimed >= 10 and first.queued == (first.claimed + 1) // 2
    states = await record_states(owner_pool, batch.batch_id)
    assert states.get("PENDING", 0) > 0
    while (await relay.relay_window()).claimed:
        pass
    assert await record_states(owner_pool, batch.batch_id) == {"QUEUED": 10}
    jobs = [j for j, _ in await drain(topology.work_queue) if j.batch_id == str(batch.batch_id)]
    # Only confirmed jobs were marked: each record went out exactly once.
    assert sorted(j.record_id for j in jobs) == sorted(str(r) for r in batch.record_ids)


async def test_cancelled_batches_are_not_relayed(
    relay_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    amqp_channel: AbstractRobustChannel,
    topology: Topology,
    make_pending: MakePending,
) -> None:
    batch = await make_pending(3)
    await owner_pool.execute(
        "UPDATE batches SET state = 'CANCELLED', cancelled_at = now() WHERE id = $1", batch.batch_id
    )
    relay = OutboxRelay(relay_pool, ConfirmingPublisher(amqp_channel))
    while (await relay.relay_window()).claimed:
        pass
    assert await record_states(owner_pool, batch.batch_id) == {"PENDING": 3}
    jobs = [j for j, _ in await drain(topology.work_queue) if j.batch_id == str(batch.batch_id)]
    assert jobs == []


async def test_two_relays_share_the_outbox_without_double_publishing(
    relay_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    amqp_channel: AbstractRobustChannel,
    topology: Topology,
    make_pending: MakePending,
) -> None:
    batch = await make_pending(2000)
    stop = asyncio.Event()
    relays = [
        OutboxRelay(relay_pool, ConfirmingPublisher(amqp_channel), window=100, poll_interval=0.05)
        for _ in range(2)
    ]
    tasks = [asyncio.create_task(r.run(stop)) for r in relays]
    for _ in range(300):
        if (await record_states(owner_pool, batch.batch_id)) == {"QUEUED": 2000}:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=15)
    assert await record_states(owner_pool, batch.batch_id) == {"QUEUED": 2000}
    jobs = [j for j, _ in await drain(topology.work_queue) if j.batch_id == str(batch.batch_id)]
    assert Counter(Counter(j.record_id for j in jobs).values()) == {1: 2000}
    assert {uuid.UUID(j.record_id) for j in jobs} == set(batch.record_ids)


class _ScriptedWindows(OutboxRelay):
    """The relay's loop over scripted window outcomes, noting when each window began."""

    def __init__(self, pool: asyncpg.Pool, publisher: ConfirmingPublisher) -> None:
        super().__init__(
            pool,
            publisher,
            window=500,
            min_poll_interval=0.01,
            held_back_poll=1.0,
            poll_interval=6.0,
        )
        self.script = [WindowResult(500, 500), WindowResult(500, 500), WindowResult(40, 40)]
        self.began: list[float] = []
        self.stop = asyncio.Event()

    async def relay_window(self) -> WindowResult:
        self.began.append(time.monotonic())
        if not self.script:
            self.stop.set()
            return WindowResult(0, 0)
        return self.script.pop(0)


async def test_full_windows_follow_at_once_and_a_short_one_waits_for_slots(
    relay_pool: asyncpg.Pool, amqp_channel: AbstractRobustChannel
) -> None:
    relay = _ScriptedWindows(relay_pool, ConfirmingPublisher(amqp_channel))
    await asyncio.wait_for(relay.run(relay.stop), timeout=30)
    first, second, short, after_short = relay.began
    assert second - first < 0.5 and short - second < 0.5  # no pause after a full window
    # held_back_poll after the short one: neither straight on nor the idle poll_interval.
    assert 1.0 <= after_short - short < 5.0
