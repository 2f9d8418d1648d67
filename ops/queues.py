"""Look at the messages in a credbatch queue without taking them off it.

    python -m ops.queues peek QUEUE [--count N]

Connects to ``CREDBATCH_AMQP_URL`` (its vhost), takes up to N messages from QUEUE without
acknowledging them, prints one line each, then closes the channel, which hands every one of
them back to the queue. Over AMQP only: no management plugin is needed (``rabbitmqctl``
shows queue depths but never messages). The queue is only ever declared passively: a name
that does not exist is an error, never a new queue.

Each line shows the message id, why and from where the broker dead-lettered it (the first
``x-death`` entry: reason, queue, count), and the body: the fields of an ``IssuanceJob``
(tenant, batch, record ids, attempt: no personal data) when it decodes as one, else its size
and first bytes in hex.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import Sequence
from typing import Any

import aio_pika
import aiormq.exceptions
from aio_pika.abc import AbstractIncomingMessage
from google.protobuf.message import DecodeError

from credbatch.gen.jobs.v1 import issuance_job_pb2
from credbatch.messaging import JOBS_TYPE

# Bytes of an undecodable body shown; enough to recognise what published it.
HEAD_BYTES = 32


def _death(headers: dict[str, Any]) -> str:
    deaths = headers.get("x-death")
    if not isinstance(deaths, list) or not deaths or not isinstance(deaths[0], dict):
        return "not dead-lettered"
    first = deaths[0]
    reason = first.get("reason", "?")
    queue = first.get("queue", "?")
    return f"{_text(reason)} from {_text(queue)} x{first.get('count', 1)}"


def _text(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _undecodable(body: bytes) -> str:
    return f"undecodable body, {len(body)} bytes: {body[:HEAD_BYTES].hex()}"


def _job(job: issuance_job_pb2.IssuanceJob) -> str:
    tenant, batch, record = (uuid.UUID(v) for v in (job.tenant_id, job.batch_id, job.record_id))
    return f"tenant {tenant} batch {batch} record {record} attempt {job.attempt}"


def _body(body: bytes, message_type: str | None) -> str:
    if message_type == JOBS_TYPE:
        bundle = issuance_job_pb2.IssuanceJobs()
        try:
            bundle.ParseFromString(body)
            jobs = [_job(job) for job in bundle.jobs]
        except (DecodeError, ValueError):
            return _undecodable(body)
        return f"{len(jobs)} jobs: " + "; ".join(jobs)
    job = issuance_job_pb2.IssuanceJob()
    try:
        job.ParseFromString(body)
        return _job(job)
    except (DecodeError, ValueError):
        return _undecodable(body)


def describe(message: AbstractIncomingMessage) -> str:
    """One line about ``message`` (every job of a message of several)."""
    headers = dict(message.headers or {})
    body = _body(message.body, message.type)
    return f"{message.message_id or '-'}  {_death(headers)}  {body}"


async def peek(amqp_url: str, queue_name: str, count: int) -> list[str]:
    """Lines about up to ``count`` messages of the queue, all of them left on it."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        held: list[AbstractIncomingMessage] = []
        while len(held) < count:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            held.append(message)
        # Closing the channel with the messages unacknowledged returns them to the queue.
        await channel.close()
        return [describe(m) for m in held]
    finally:
        await connection.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.queues", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    peek_parser = commands.add_parser("peek", help="show messages, leaving them on the queue")
    peek_parser.add_argument("queue")
    peek_parser.add_argument("--count", type=int, default=10)
    args = parser.parse_args(argv)
    amqp_url = os.environ.get("CREDBATCH_AMQP_URL")
    if not amqp_url:
        print("error: set CREDBATCH_AMQP_URL (with the vhost)", file=sys.stderr)
        return 2
    if args.count < 1:
        print("error: --count must be at least 1", file=sys.stderr)
        return 2
    try:
        lines = asyncio.run(peek(amqp_url, args.queue, args.count))
    except aiormq.exceptions.ChannelNotFoundEntity:
        print(f"error: no queue {args.queue!r} in this vhost", file=sys.stderr)
        return 1
    except (OSError, aiormq.exceptions.AMQPError) as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    print(f"{len(lines)} message(s) shown, all left on {args.queue}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
