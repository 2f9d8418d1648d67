"""The retry policy, without a network: what each answer means for a delivery."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from workers.webhooks.policy import (
    JITTER,
    MAX_RETRY_AFTER,
    Verdict,
    decide,
    retry_after_seconds,
)

SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 50400.0, 72000.0, 86400.0)


@pytest.mark.parametrize("status", [200, 201, 204, 299])
def test_2xx_succeeds(status: int) -> None:
    assert decide(1, SCHEDULE, status).verdict is Verdict.SUCCEEDED


def test_410_is_gone() -> None:
    assert decide(3, SCHEDULE, 410).verdict is Verdict.GONE


@pytest.mark.parametrize("status", [301, 302, 307, 400, 404, 500, 503, None])
def test_other_answers_retry_on_the_schedule_with_jitter(status: int | None) -> None:
    rng = random.Random(7)
    for attempt, base in enumerate(SCHEDULE, start=1):
        decision = decide(attempt, SCHEDULE, status, "timeout", rng=rng)
        assert decision.verdict is Verdict.RETRY
        assert base * (1 - JITTER) <= decision.delay <= base * (1 + JITTER)
    assert decide(len(SCHEDULE) + 1, SCHEDULE, status).verdict is Verdict.FAILED


def test_redirects_say_they_are_not_followed() -> None:
    assert "redirects are not followed" in decide(1, SCHEDULE, 302).error


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retry_after_replaces_the_delay_where_honoured(status: int) -> None:
    decision = decide(1, SCHEDULE, status, retry_after=42.0)
    assert decision == decision.__class__(Verdict.RETRY, 42.0, f"HTTP {status}")


def test_retry_after_is_ignored_on_other_statuses() -> None:
    assert decide(1, SCHEDULE, 500, retry_after=42.0).delay < 6


def test_retry_after_parsing() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(format_datetime(now + timedelta(seconds=90)), now) == 90.0
    assert retry_after_seconds(format_datetime(now - timedelta(seconds=90)), now) == 0.0
    assert retry_after_seconds("999999999") == MAX_RETRY_AFTER
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
