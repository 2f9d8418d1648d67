"""OutboxRelay against the real PostgreSQL and RabbitMQ: one confirmed job per record, several
to a message."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Sequence

import asyncpg
import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustChannel
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from credbatch.gen.jobs.v1 import issuance_job_pb2
from credbatch.messaging import (
    JOBS_TYPE,
    ConfirmingPublisher,
    OutgoingMessage,
    PublishError,
    Topology,
)
from tests.fixtures.amqp import jobs_in
from tests.fixtures.batches import record_states
from tests.fixtures.relay import TRACEPARENT, MakePending
from workers.relay.relay import OutboxRelay, WindowResult, _Claimed, bundles


async def drain(
    queue: AbstractQueue,
) -> list[tuple[issuance_job_pb2.IssuanceJob, dict[str, object]]]:
    """Every message now on the queue (acknowledged), parsed."""
    jobs: list[tuple[issuance_job_pb2.IssuanceJob, dict[str, object]]] = []
    while True:
        message = await queue.get(no_ack=True, fail=False, timeout=5)
        if message is None:
            return jobs
        jobs += [(job, dict(message.headers)) for job in jobs_in(message)]


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


def _claimed(batch: uuid.UUID, step: int = 0) -> _Claimed:
    return _Claimed(uuid.UUID(int=1), batch, uuid.uuid4(), 0, None, reminder_step=step)


def test_only_consecutive_jobs_of_one_batch_share_a_message() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    window = [_claimed(a), _claimed(a), _claimed(b), _claimed(a), _claimed(a), _claimed(a)]
    window += [_claimed(a, step=1), _claimed(a, step=1), _claimed(a)]
    runs = bundles(window, 2)
    assert [len(r) for r in runs] == [2, 1, 2, 1, 2, 1]
    assert [c for run in runs for c in run] == window  # the claim's order, every job once
    assert all(len({(c.batch_id, c.reminder_step) for c in run}) == 1 for run in runs)
    assert [len(r) for r in bundles(window, 1)] == [1] * len(window)


async def test_a_batchs_jobs_go_out_several_to_a_message(
    relay_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    amqp_channel: AbstractRobustChannel,
    topology: Topology,
    make_pending: MakePending,
) -> None:
    big = await make_pending(25)
    small = await make_pending(1)
    relay = OutboxRelay(relay_pool, ConfirmingPublisher(amqp_channel), window=500, bundle=10)
    while (await relay.relay_window()).claimed:
        pass

    assert await record_states(owner_pool, big.batch_id) == {"QUEUED": 25}
    assert await record_states(owner_pool, small.batch_id) == {"QUEUED": 1}
    messages = []
    while message := await topology.work_queue.get(no_ack=True, fail=False, timeout=5):
        messages.append(message)
    by_batch: dict[str, list[int]] = {}
    seen: Counter[str] = Counter()
    for message in messages:
        jobs = jobs_in(message)
        assert len({j.batch_id for j in jobs}) == 1
        assert message.type == (JOBS_TYPE if len(jobs) > 1 else None)
        assert message.message_id == (
            jobs[0].record_id if len(jobs) == 1 else f"{jobs[0].record_id}+{len(jobs)}"
        )
        assert message.headers["traceparent"] == TRACEPARENT
        by_batch.setdefault(jobs[0].batch_id, []).append(len(jobs))
        seen.update(j.record_id for j in jobs)
    assert sorted(by_batch[str(big.batch_id)]) == [5, 10, 10]
    assert by_batch[str(small.batch_id)] == [1]
    assert seen == Counter({str(r): 1 for r in [*big.record_ids, *small.record_ids]})


async def test_a_message_not_confirmed_leaves_every_job_of_it_pending(
    relay_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    amqp_channel: AbstractRobustChannel,
    topology: Topology,
    make_pending: MakePending,
) -> None:
    batch = await make_pending(12)
    half = _HalfConfirming(ConfirmingPublisher(amqp_channel))
    relay = OutboxRelay(relay_pool, half, window=12, bundle=4)
    first = await relay.relay_window()
    # Three messages of four jobs, the second not confirmed.
    assert (first.claimed, first.queued, half.windows) == (12, 8, [3])
    assert await record_states(owner_pool, batch.batch_id) == {"QUEUED": 8, "PENDING": 4}
    while (await relay.relay_window()).claimed:
        pass
    assert await record_states(owner_pool, batch.batch_id) == {"QUEUED": 12}
    jobs = [j for j, _ in await drain(topology.work_queue) if j.batch_id == str(batch.batch_id)]
    assert sorted(j.record_id for j in jobs) == sorted(str(r) for r in batch.record_ids)


def test_a_bundle_is_at_least_one_job() -> None:
    with pytest.raises(ValueError, match="bundle must be at least 1"):
        OutboxRelay(None, None, bundle=0)  # type: ignore[arg-type]
