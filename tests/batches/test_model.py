"""Progress arithmetic of the batch view (its state rule: tests/batches/test_lifecycle.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from credbatch.batches.model import (
    RecordCounts,
    estimate_completion,
)


def test_unknown_state_is_refused() -> None:
    with pytest.raises(ValueError):
        RecordCounts.from_mapping({"LOST": 1})


def test_estimate_from_recent_throughput() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    estimate, rate = estimate_completion(now, 600, 120, timedelta(seconds=60))
    assert rate == 2.0
    assert estimate == now + timedelta(seconds=300)


def test_no_estimate_without_throughput() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert estimate_completion(now, 600, 0, timedelta(seconds=60)) == (None, 0.0)
    assert estimate_completion(now, 0, 10, timedelta(seconds=60)) == (None, 0.0)
