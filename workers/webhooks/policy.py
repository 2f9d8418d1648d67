"""What one attempt's result means for its delivery: a pure decision, testable alone.

2xx succeeds. 410 Gone says the endpoint is gone for good: it is disabled. Everything else
(3xx included: redirects are never followed, see credbatch.webhooks.addresses; timeouts,
refused connections and refused addresses) is a failed attempt, retried on the schedule with
jitter until the schedule is used up. 429, 502, 503 and 504 ask for patience: a Retry-After
they carry replaces the schedule's delay for that retry.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

JITTER = 0.1
"""Each scheduled delay is stretched or shrunk by up to this fraction, so the deliveries of a
burst of events that failed together do not all come back at the same instant."""
MAX_RETRY_AFTER = 24 * 3600.0
"""A Retry-After beyond this is taken as this: a receiver cannot park a delivery forever."""
HONOURS_RETRY_AFTER = frozenset({429, 502, 503, 504})


class Verdict(enum.Enum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"
    FAILED = "failed"
    GONE = "gone"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    delay: float = 0.0
    error: str = ""


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date); None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def decide(
    attempt: int,
    schedule: Sequence[float],
    status: int | None,
    error: str = "",
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """The fate of a delivery after its ``attempt``-th attempt (1-based).

    ``status`` is the HTTP status received, None when none was (``error`` says why).
    """
    if status is not None and 200 <= status < 300:
        return Decision(Verdict.SUCCEEDED)
    if status == 410:
        return Decision(Verdict.GONE, error="the endpoint answered 410 Gone")
    if status is not None:
        error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    if attempt > len(schedule):
        return Decision(Verdict.FAILED, error=f"{error}; gave up after {attempt} attempts")
    if status in HONOURS_RETRY_AFTER and retry_after is not None:
        return Decision(Verdict.RETRY, delay=retry_after, error=error)
    spread = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    return Decision(Verdict.RETRY, delay=schedule[attempt - 1] * spread, error=error)
