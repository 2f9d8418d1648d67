"""State derivation and progress arithmetic of the batch view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credbatch.batches.model import (
    BatchState,
    RecordCounts,
    RecordState,
    derive_state,
    estimate_completion,
)


@pytest.mark.parametrize(
    ("counts", "total", "cancelled", "expected"),
    [
        (RecordCounts(pending=3), 3, False, BatchState.QUEUED),
        (RecordCounts(pending=1, queued=2), 3, False, BatchState.QUEUED),
        (RecordCounts(queued=2, issued=1), 3, False, BatchState.IN_PROGRESS),
        (RecordCounts(queued=2, invited=1), 3, False, BatchState.IN_PROGRESS),
        (RecordCounts(invited=2, claimed=1), 3, False, BatchState.COMPLETED),
        (RecordCounts(invited=2, failed=1), 3, False, BatchState.COMPLETED_WITH_ERRORS),
        (RecordCounts(pending=2, failed=1), 3, False, BatchState.IN_PROGRESS),
        (RecordCounts(pending=3), 3, True, BatchState.CANCELLED),
        (RecordCounts(invited=1, cancelled=2), 3, True, BatchState.CANCELLED),
        (RecordCounts(), 0, False, BatchState.COMPLETED),
    ],
)
def test_derive_state(
    counts: RecordCounts, total: int, cancelled: bool, expected: BatchState
) -> None:
    assert derive_state(counts, total, cancelled) is expected


def test_failed_batch_stays_failed() -> None:
    assert derive_state(RecordCounts(pending=1), 1, False, failed=True) is BatchState.FAILED


@given(st.lists(st.sampled_from(list(RecordState)), max_size=50))
def test_terminal_exactly_when_every_record_is(states: list[RecordState]) -> None:
    counts = RecordCounts.from_mapping({s.value: states.count(s) for s in set(states)})
    state = derive_state(counts, len(states), False)
    every_terminal = all(
        s
        in {
            RecordState.INVITED,
            RecordState.FAILED,
            RecordState.CANCELLED,
            RecordState.CLAIMED,
            RecordState.REVOKED,
        }
        for s in states
    )
    assert (state in {BatchState.COMPLETED, BatchState.COMPLETED_WITH_ERRORS}) == every_terminal
    assert sum(counts.of(s) for s in RecordState) == len(states)


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
