"""Outcomes of one job, and the errors that decide them.

Every job ends in exactly one of: ``ACK`` (done), ``SKIPPED`` (nothing to do: the record is
finished or cancelled, or another group of the worker has it in hand; acked too), ``RETRY``
(a transient failure: republish to the delay queue for this attempt with attempt + 1, then
ack), ``DEAD_LETTER`` (malformed, foreign or out of attempts: reject without requeue so the
work queue's DLX moves it to the dead-letter queue) — always after the record's commit.

A provider that answers "too many requests" (SMS HTTP 429, SMTP 421 or a 4.7.x policy
reply) has refused nothing about the record: the job is retried after the provider's
Retry-After (or the back-off step of its attempt) at the same attempt, so a throttle never
burns an attempt and never fails a record, however long it lasts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from credbatch.schema.model import Medium


class Outcome(enum.Enum):
    ACK = "ack"
    SKIPPED = "skipped"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True)
class Throttle:
    """A provider asked us to slow down: send nothing through ``medium`` for a while.

    Attributes:
        medium: the channel that was throttled.
        retry_after: seconds the provider asked us to wait (None: it did not say).
    """

    medium: Medium
    retry_after: float | None = None


class IssuanceFailure(Exception):
    """A step of issuance failed.

    Attributes:
        code: stable UPPER_SNAKE code stored on the record (SMTP_REJECTED, SMS_REJECTED, ...).
        message: the provider's reply or a description; stored on the record (it may quote
            the provider, so it never goes to logs or spans).
        transient: whether a later attempt may succeed.
        throttle: set when the provider throttled us rather than failed the record.
    """

    def __init__(
        self, code: str, message: str, *, transient: bool, throttle: Throttle | None = None
    ) -> None:
        super().__init__(code)
        self.code = code
        self.message = message[:1000]
        self.transient = transient or throttle is not None
        self.throttle = throttle


def transient(code: str, message: str) -> IssuanceFailure:
    return IssuanceFailure(code, message, transient=True)


def permanent(code: str, message: str) -> IssuanceFailure:
    return IssuanceFailure(code, message, transient=False)


def throttled(code: str, message: str, throttle: Throttle) -> IssuanceFailure:
    return IssuanceFailure(code, message, transient=True, throttle=throttle)


TEMPLATE_ERROR = "TEMPLATE_ERROR"


def template_failure(problem_code: str, message: str) -> IssuanceFailure:
    """A batch's template could not render this record (a sandbox limit, an undefined value):
    permanent, stored as TEMPLATE_ERROR with the sandbox's own code leading the message."""
    return permanent(TEMPLATE_ERROR, f"{problem_code}: {message}")


@dataclass(frozen=True)
class Decision:
    """What to do with a job's message once its record's state is committed.

    Attributes:
        outcome: ack, retry or dead-letter.
        next_attempt: the attempt the retried job runs at.
        throttle: set when the retry is a throttle's: it waits at least
            ``throttle.retry_after`` and keeps the attempt.
        wait: set when the record is in another worker's hands: the retry waits at least
            this many seconds and keeps the attempt.
    """

    outcome: Outcome
    next_attempt: int = 0
    throttle: Throttle | None = None
    wait: float | None = None


def decide(failure: IssuanceFailure | None, attempt: int, max_attempts: int) -> Decision:
    """The outcome of a processed job that ran at ``attempt`` (1-based)."""
    if failure is None or not failure.transient:
        return Decision(Outcome.ACK)
    if failure.throttle is not None:
        return Decision(Outcome.RETRY, attempt, failure.throttle)
    if attempt >= max_attempts:
        return Decision(Outcome.DEAD_LETTER)
    return Decision(Outcome.RETRY, attempt + 1)
