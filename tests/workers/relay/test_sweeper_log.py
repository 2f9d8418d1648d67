"""A sweep is logged per batch, with its tenant and batch ids, in the upload's trace."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest_asyncio

from credbatch.config import Settings
from credbatch.messaging import ConfirmingPublisher, declare_topology
from tests.fixtures.dispatch import FairDb, add_pending_batch
from tests.fixtures.logs import json_logs
from tests.workers.relay.test_sweeper import set_states
from workers.relay.sweeper import Sweeper

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest_asyncio.fixture(loop_scope="session")
async def channel(
    fresh_amqp_url: str, amqp_settings: Settings
) -> AsyncIterator[aio_pika.abc.AbstractChannel]:
    connection = await aio_pika.connect(fresh_amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare_topology(channel, amqp_settings)
        yield channel
    finally:
        await connection.close()


async def test_each_swept_batch_gets_a_warning_with_its_ids_and_trace(
    fair_db: FairDb, channel: aio_pika.abc.AbstractChannel
) -> None:
    tenant = uuid.uuid4()
    traced = await add_pending_batch(fair_db.owner, tenant, 3)
    untraced = await add_pending_batch(fair_db.owner, tenant, 1)
    await fair_db.owner.execute(
        "UPDATE batches SET traceparent = $2 WHERE id = $1", traced, TRACEPARENT
    )
    await set_states(fair_db.owner, traced, ["QUEUED", "QUEUED", "ISSUED"], 60)
    await set_states(fair_db.owner, untraced, ["QUEUED"], 60)
    sweeper = Sweeper(
        fair_db.relay, ConfirmingPublisher(channel), stuck_after=10, retry_delays=[30.0]
    )
    with json_logs("relay") as logs:
        result = await sweeper.sweep_once()
        assert (await sweeper.sweep_once()).total == 0
    assert (result.requeued, result.republished) == (3, 1)
    entries = {e["batch_id"]: e for e in logs.containing("sweeper: tenant")}
    assert set(entries) == {str(traced), str(untraced)}
    first = entries[str(traced)]
    assert first["level"] == "WARNING"
    assert first["tenant_id"] == str(tenant)
    assert (first["requeued"], first["republished"], first["cancelled"]) == (2, 1, 0)
    assert first["trace_id"] == TRACE_ID
    assert f"tenant {tenant} batch {traced}: 2 stuck records requeued" in first["message"]
    assert "trace_id" not in entries[str(untraced)]
    assert entries[str(untraced)]["requeued"] == 1
