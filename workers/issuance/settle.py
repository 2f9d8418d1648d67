"""Settling a group's messages once their records are committed: ack, retry or dead-letter.

A retried job is republished to its delay queue (confirmed) before its message is acked; when
that publish fails the message is requeued instead, so no job is ever lost between the two.
"""

from __future__ import annotations

import logging
from collections import Counter

from aio_pika.abc import AbstractIncomingMessage

from credbatch.config import Settings
from credbatch.messaging import ConfirmingPublisher
from credbatch.metrics import JOBS
from workers.issuance.acks import DeliveryLedger
from workers.issuance.job import Job, retry_message
from workers.issuance.outcome_log import log_settled
from workers.issuance.outcomes import Decision, Outcome

log = logging.getLogger(__name__)


async def settle(
    jobs: list[Job],
    publisher: ConfirmingPublisher,
    settings: Settings,
    deliveries: DeliveryLedger,
) -> None:
    """Ack, retry or dead-letter every message; records are committed by now."""
    retrying = [j for j in jobs if j.decision and j.decision.outcome is Outcome.RETRY]
    retry_ok = True
    if retrying:
        try:
            await publisher.publish_many(
                [retry_message(j, settings) for j in retrying],
                timeout=settings.relay_publish_timeout,
            )
        except Exception as error:
            # Not republished: leave them to the broker (requeue) rather than lose them.
            log.warning("republishing %d retries failed: %s", len(retrying), type(error).__name__)
            retry_ok = False
    settled: Counter[str] = Counter()
    ack: list[AbstractIncomingMessage] = []
    requeue: list[AbstractIncomingMessage] = []
    reject: list[AbstractIncomingMessage] = []
    for job in jobs:
        decision = job.decision or Decision(Outcome.ACK)
        job.span.set_attribute("credbatch.outcome", decision.outcome.value)
        settled[decision.outcome.value] += 1
        if decision.outcome is Outcome.DEAD_LETTER:
            reject.append(job.message)
        elif decision.outcome is Outcome.RETRY and not retry_ok:
            requeue.append(job.message)
        else:
            ack.append(job.message)
    try:
        unsettled = (await deliveries.settle(ack, requeue, reject)).failed
    finally:
        for job in jobs:
            job.span.end()
    for error_name, count in unsettled.items():
        # One line per group, not per message: a lost channel fails a whole group at once.
        log.warning("settling %d of %d messages failed: %s", count, len(jobs), error_name)
    for outcome, count in settled.items():
        JOBS.add(count, {"credbatch.job.outcome": outcome})
    log_settled(jobs, retry_ok)
