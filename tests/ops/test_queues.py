"""`python -m ops.queues peek`: shows what a queue holds and leaves every message on it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aio_pika

from credbatch.messaging import JOBS_TYPE
from tests.fixtures.issuance import job_body, jobs_body

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "credbatch.issuance.parked"


def _peek(amqp_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.queues", "peek", *args],
        env={"PATH": "/usr/bin:/bin", "CREDBATCH_AMQP_URL": amqp_url},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_peek_shows_jobs_and_undecodable_bodies_and_leaves_them(
    fresh_amqp_url: str,
) -> None:
    tenant, batch, record = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    connection = await aio_pika.connect(fresh_amqp_url)
    try:
        channel = await connection.channel()
        await channel.declare_queue(QUEUE, durable=True)
        # What the broker writes when it dead-letters a message (a field table of tables).
        death: Any = [{"reason": "rejected", "queue": "credbatch.issuance.dead", "count": 1}]
        await channel.default_exchange.publish(
            aio_pika.Message(job_body(tenant, batch, record), message_id="m-1"), QUEUE
        )
        await channel.default_exchange.publish(
            aio_pika.Message(b"\xff\x00 not a job", message_id="m-2", headers={"x-death": death}),
            QUEUE,
        )
        first = _peek(fresh_amqp_url, QUEUE, "--count", "1")
        assert first.returncode == 0, first.stderr
        assert first.stdout.splitlines() == [
            f"m-1  not dead-lettered  tenant {tenant} batch {batch} record {record} attempt 1"
        ]
        both = _peek(fresh_amqp_url, QUEUE)
        assert both.returncode == 0, both.stderr
        lines = both.stdout.splitlines()
        assert len(lines) == 2
        assert lines[1] == (
            "m-2  rejected from credbatch.issuance.dead x1  undecodable body, 12 bytes: "
            + b"\xff\x00 not a job".hex()
        )
        assert "2 message(s) shown, all left on" in both.stderr
        declared = await channel.declare_queue(QUEUE, passive=True)
        assert declared.declaration_result.message_count == 2
    finally:
        await connection.close()


def test_peek_names_a_missing_queue_and_creates_none(fresh_amqp_url: str) -> None:
    missing = _peek(fresh_amqp_url, "credbatch.no-such-queue")
    assert missing.returncode == 1
    assert "no queue 'credbatch.no-such-queue' in this vhost" in missing.stderr
    again = _peek(fresh_amqp_url, "credbatch.no-such-queue")
    assert again.returncode == 1


def test_peek_needs_the_broker_url() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ops.queues", "peek", QUEUE],
        env={"PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2 and "CREDBATCH_AMQP_URL" in done.stderr


async def test_peek_shows_every_job_of_a_message_of_several(fresh_amqp_url: str) -> None:
    tenant, batch = uuid.uuid4(), uuid.uuid4()
    records = [uuid.uuid4(), uuid.uuid4()]
    connection = await aio_pika.connect(fresh_amqp_url)
    try:
        channel = await connection.channel()
        await channel.declare_queue(QUEUE, durable=True)
        for body, message_id in ((jobs_body(tenant, batch, records), "b-1"), (b"\x0a\xff", "b-2")):
            await channel.default_exchange.publish(
                aio_pika.Message(body, message_id=message_id, type=JOBS_TYPE), QUEUE
            )
        shown = _peek(fresh_amqp_url, QUEUE)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines() == [
            f"b-1  not dead-lettered  2 jobs: tenant {tenant} batch {batch} record {records[0]}"
            f" attempt 1; tenant {tenant} batch {batch} record {records[1]} attempt 1",
            "b-2  not dead-lettered  undecodable body, 2 bytes: 0aff",
        ]
    finally:
        await connection.close()
