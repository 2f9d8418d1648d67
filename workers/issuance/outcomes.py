"""Outcomes of one job, and the errors that decide them.

Every job ends in exactly one of: ``ACK`` (done), ``SKIPPED`` (nothing to do: the record is
finished or cancelled; acked too), ``RETRY`` (a transient failure: republish to the delay
queue for this attempt with attempt + 1, then ack), ``DEAD_LETTER`` (malformed, foreign or out
of attempts: reject without requeue so the work queue's DLX moves it to the dead-letter
queue) — always after the record's commit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Outcome(enum.Enum):
    ACK = "ack"
    SKIPPED = "skipped"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


class IssuanceFailure(Exception):
    """A step of issuance failed.

    Attributes:
        code: stable UPPER_SNAKE code stored on the record (SMTP_REJECTED, SMS_REJECTED, ...).
        message: the provider's reply or a description; stored on the record (it may quote
            the provider, so it never goes to logs or spans).
        transient: whether a later attempt may succeed.
    """

    def __init__(self, code: str, message: str, *, transient: bool) -> None:
        super().__init__(code)
        self.code = code
        self.message = message[:1000]
        self.transient = transient


def transient(code: str, message: str) -> IssuanceFailure:
    return IssuanceFailure(code, message, transient=True)


def permanent(code: str, message: str) -> IssuanceFailure:
    return IssuanceFailure(code, message, transient=False)


TEMPLATE_ERROR = "TEMPLATE_ERROR"


def template_failure(problem_code: str, message: str) -> IssuanceFailure:
    """A batch's template could not render this record (a sandbox limit, an undefined value):
    permanent, stored as TEMPLATE_ERROR with the sandbox's own code leading the message."""
    return permanent(TEMPLATE_ERROR, f"{problem_code}: {message}")


@dataclass(frozen=True)
class Decision:
    """What to do with a job's message once its record's state is committed."""

    outcome: Outcome
    next_attempt: int = 0


def decide(failure: IssuanceFailure | None, attempt: int, max_attempts: int) -> Decision:
    """The outcome of a processed job that ran at ``attempt`` (1-based)."""
    if failure is None or not failure.transient:
        return Decision(Outcome.ACK)
    if attempt >= max_attempts:
        return Decision(Outcome.DEAD_LETTER)
    return Decision(Outcome.RETRY, attempt + 1)
