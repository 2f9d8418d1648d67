"""Settling a group's messages once their records are committed: ack, retry or dead-letter.

A retried job is republished to its delay queue (confirmed) before its message is acked; when
that publish fails the message is requeued instead, so no job is ever lost between the two.
A message of one job to dead-letter is rejected (the broker dead-letters it). A message of
several is settled once for all its jobs: those to dead-letter are published to the
dead-letter exchange one by one, as the retries are, and the message is acked once both are
confirmed, or requeued (every job of it runs again) when they are not. A message of several
that does not decode is rejected whole.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter

from aio_pika.abc import AbstractIncomingMessage

from credbatch.config import Settings
from credbatch.messaging import ConfirmingPublisher
from credbatch.metrics import JOBS
from workers.issuance.acks import DeliveryLedger
from workers.issuance.job import Job, dead_letter_message, retry_message
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
    republish = [
        retry_message(j, settings)
        if j.decision.outcome is Outcome.RETRY
        else dead_letter_message(j)
        for j in jobs
        if j.decision is not None and _republished(j, j.decision.outcome)
    ]
    republished = True
    if republish:
        try:
            await publisher.publish_many(republish, timeout=settings.relay_publish_timeout)
        except Exception as error:
            # Not republished: leave them to the broker (requeue) rather than lose them.
            log.warning(
                "republishing %d retried or dead jobs failed: %s",
                len(republish),
                type(error).__name__,
            )
            republished = False
    settled: Counter[str] = Counter()
    verdicts: dict[int, tuple[AbstractIncomingMessage, _Verdict]] = {}
    for job in jobs:
        decision = job.decision or Decision(Outcome.ACK)
        job.span.set_attribute("credbatch.outcome", decision.outcome.value)
        settled[decision.outcome.value] += 1
        if decision.outcome is Outcome.DEAD_LETTER and not _republished(job, decision.outcome):
            verdict = _Verdict.REJECT
        elif not republished and _republished(job, decision.outcome):
            verdict = _Verdict.REQUEUE
        else:
            verdict = _Verdict.ACK
        # A message of several is settled by its most cautious job's verdict.
        _, earlier = verdicts.get(id(job.message), (job.message, _Verdict.ACK))
        verdicts[id(job.message)] = (job.message, max(earlier, verdict))
    ack: list[AbstractIncomingMessage] = []
    requeue: list[AbstractIncomingMessage] = []
    reject: list[AbstractIncomingMessage] = []
    lists = {_Verdict.ACK: ack, _Verdict.REQUEUE: requeue, _Verdict.REJECT: reject}
    for message, verdict in verdicts.values():
        lists[verdict].append(message)
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
    log_settled(jobs, republished)


class _Verdict(enum.IntEnum):
    """What becomes of a message; a message of several jobs gets the highest of theirs."""

    ACK = 0
    REQUEUE = 1
    REJECT = 2


def _republished(job: Job, outcome: Outcome) -> bool:
    """Whether the job goes to a queue as a message of its own before its message is acked:
    a retry, or a job of a message of several to dead-letter (one that decoded)."""
    if outcome is Outcome.RETRY:
        return True
    return outcome is Outcome.DEAD_LETTER and job.body is not None
