"""Throttle answers of the providers: how they are read, decided and delayed (no broker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiosmtplib
import httpx
import pytest

from credbatch.config import Settings
from credbatch.schema.model import Medium
from workers.issuance.delivery import email, sms
from workers.issuance.job import throttle_queue
from workers.issuance.outcomes import Outcome, Throttle, decide, throttled, transient
from workers.issuance.throttle import hold_seconds

SETTINGS = Settings().with_overrides(retry_delays=(5.0, 30.0, 120.0, 600.0))


def test_a_throttle_retries_at_the_same_attempt_even_past_the_last() -> None:
    failure = throttled("SMS_THROTTLED", "429", Throttle(Medium.SMS, 7.0))
    for attempt in (1, 5, 9):
        decision = decide(failure, attempt, max_attempts=5)
        assert decision.outcome is Outcome.RETRY
        assert decision.next_attempt == attempt
        assert decision.throttle == Throttle(Medium.SMS, 7.0)
    # An ordinary transient failure still counts and runs out.
    assert decide(transient("SMS_TEMPORARY_FAILURE", "503"), 5, 5).outcome is Outcome.DEAD_LETTER


@pytest.mark.parametrize(
    ("retry_after", "queue"),
    [
        (None, "credbatch.issuance.retry.30000"),  # the back-off step of attempt 2
        (0.0, "credbatch.issuance.retry.5000"),
        (5.0, "credbatch.issuance.retry.5000"),
        (5.5, "credbatch.issuance.retry.30000"),
        (121.0, "credbatch.issuance.retry.600000"),
        (3600.0, "credbatch.issuance.retry.600000"),  # beyond all: the longest, then ask again
    ],
)
def test_the_delay_queue_waits_at_least_the_retry_after(
    retry_after: float | None, queue: str
) -> None:
    assert throttle_queue(Throttle(Medium.SMS, retry_after), 2, SETTINGS) == queue


def test_the_dispatch_hold_follows_the_retry_after_or_the_back_off() -> None:
    assert hold_seconds(Throttle(Medium.SMS, 42.0), 1, SETTINGS) == 42.0
    assert hold_seconds(Throttle(Medium.EMAIL), 1, SETTINGS) == 5.0
    assert hold_seconds(Throttle(Medium.EMAIL), 9, SETTINGS) == 600.0


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert sms.retry_after_seconds("12", now) == 12.0
    assert sms.retry_after_seconds(" 1.5 ", now) == 1.5
    later = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert sms.retry_after_seconds(later, now) == 90.0
    earlier = format_datetime(now - timedelta(seconds=90), usegmt=True)
    assert sms.retry_after_seconds(earlier, now) == 0.0
    assert sms.retry_after_seconds("86400", now) == sms.MAX_RETRY_AFTER
    for absent in (None, "", "soon", "-3", "nan", "inf"):
        assert sms.retry_after_seconds(absent, now) is None


def _response(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"message": "m"}, headers=headers)


def test_sms_429_is_a_throttle_with_its_retry_after() -> None:
    failure = sms._classify(_response(429, {"Retry-After": "3"}))
    assert failure.throttle == Throttle(Medium.SMS, 3.0)
    assert failure.transient
    assert sms._classify(_response(429)).throttle == Throttle(Medium.SMS, None)
    assert sms._classify(_response(503)).throttle is None
    assert not sms._classify(_response(400)).transient


@pytest.mark.parametrize(
    ("code", "message", "is_throttle"),
    [
        (421, "4.7.0 Try again later, closing connection", True),
        (421, "Service not available", True),
        (451, "4.7.1 Greylisted, please retry", True),
        (450, "4.7.28 Our system has detected an unusual rate", True),
        (451, "Rate limit exceeded for sender", True),
        (452, "Too many messages, slow down", True),
        (452, "4.2.2 Mailbox full", False),
        (452, "4.5.3 Too many recipients", False),
        (451, "4.3.0 Local error in processing", False),
        # Most 4xx replies end so; the enhanced code says what the trouble is.
        (451, "4.3.0 Mailbox temporarily unavailable, try again later", False),
        (450, "Mailbox unavailable", False),
    ],
)
def test_smtp_try_later_replies_that_mean_throttling(
    code: int, message: str, is_throttle: bool
) -> None:
    failure = email._classify(aiosmtplib.SMTPResponseException(code, message))
    assert failure.transient
    assert (failure.throttle == Throttle(Medium.EMAIL)) is is_throttle
    assert email._classify(aiosmtplib.SMTPResponseException(550, "4.7.1 no")).throttle is None
