"""Read the parking queue without taking anything off it: ``python -m workers.relay.parked``.

The dead-letter consumer parks what it cannot map to a record (``workers.relay.dead_letters``)
in ``credbatch.issuance.parked``, which nothing consumes. This prints one JSON line per parked
message, at most ``--limit`` of them: why it was parked, the broker's account of its first
dead-lettering, its size and SHA-256, and, when the body is an issuance job, the ids it names.
It runs wherever the relay's settings are (``kubectl exec deploy/credbatch-relay -- python -m
workers.relay.parked``) and needs no broker plugin.

Messages are fetched unacknowledged and handed back when the channel closes, so reading them
changes nothing but their ``x-delivery-count``. Bodies are printed (base64) only with
``--body``: a malformed body may hold anything, personal data included.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import sys
import uuid
from collections.abc import Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from google.protobuf.message import DecodeError

from credbatch.config import ConfigError, Settings, load_settings
from credbatch.gen.jobs.v1 import issuance_job_pb2
from credbatch.messaging import PARKED_QUEUE
from workers.relay.dead_letters import PARKED_REASON_HEADER


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _job(body: bytes) -> dict[str, Any] | None:
    job = issuance_job_pb2.IssuanceJob()
    try:
        job.ParseFromString(body)
        ids = {
            "tenant_id": str(uuid.UUID(job.tenant_id)),
            "batch_id": str(uuid.UUID(job.batch_id)),
            "record_id": str(uuid.UUID(job.record_id)),
        }
    except (DecodeError, ValueError):
        return None
    return {**ids, "attempt": job.attempt}


def describe(message: AbstractIncomingMessage, *, with_body: bool = False) -> dict[str, Any]:
    """What an operator needs to know of one parked message, as a JSON-ready dict."""
    headers = message.headers or {}
    described: dict[str, Any] = {
        "message_id": message.message_id,
        "parked_reason": _text(headers.get(PARKED_REASON_HEADER)),
        "first_death_reason": _text(headers.get("x-first-death-reason")),
        "first_death_queue": _text(headers.get("x-first-death-queue")),
        "timestamp": message.timestamp.isoformat() if message.timestamp else None,
        "size": len(message.body),
        "sha256": hashlib.sha256(message.body).hexdigest(),
        "job": _job(message.body),
    }
    if with_body:
        described["body"] = base64.b64encode(message.body).decode()
    return described


async def peek(settings: Settings, limit: int, *, with_body: bool = False) -> list[dict[str, Any]]:
    """Up to ``limit`` parked messages, described, all left in the queue."""
    connection = await aio_pika.connect(settings.amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(PARKED_QUEUE, passive=True)
        seen = []
        for _ in range(limit):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            seen.append(describe(message, with_body=with_body))
        # Closing the channel hands every unacknowledged message back to the queue.
        await channel.close()
        return seen
    finally:
        await connection.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workers.relay.parked", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--limit", type=int, default=20, help="messages to show (default 20)")
    parser.add_argument("--body", action="store_true", help="print each body, base64")
    args = parser.parse_args(argv)
    if args.limit < 1:
        parser.error("--limit must be at least 1")
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    for described in asyncio.run(peek(settings, args.limit, with_body=args.body)):
        print(json.dumps(described, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
