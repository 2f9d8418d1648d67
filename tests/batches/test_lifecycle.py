"""The record lifecycle, as the database enforces it and as Python reads it.

Every pair of states is tried straight in SQL as the application role (service scope, the
role and RLS of every writer but the relay's SECURITY DEFINER functions): the legal changes
pass, every other one fails with an error naming both states. The batch state rule
(``batch_state_of``) is checked case by case and against the record states Python counts as
finished.
"""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Any

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credbatch.batches import lifecycle
from credbatch.batches.lifecycle import TRANSITIONS, Failure
from credbatch.batches.model import (
    REVOCABLE_RECORD_STATES,
    TERMINAL_RECORD_STATES,
    BatchState,
    RecordState,
)
from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.batches import insert_batch, insert_schema

S = RecordState
PAIRS = [(a, b) for a, b in itertools.product(RecordState, RecordState) if a is not b]


async def test_python_transitions_are_the_database_table(owner_pool: asyncpg.Pool) -> None:
    rows = await owner_pool.fetch("SELECT from_state, to_state FROM record_transitions")
    in_db = {(RecordState(r["from_state"]), RecordState(r["to_state"])) for r in rows}
    in_python = {(a, b) for a, targets in TRANSITIONS.items() for b in targets}
    assert in_db == in_python
    assert set(TRANSITIONS) == set(RecordState)


async def test_the_changes_the_guard_passes_unchecked_are_legal(owner_pool: asyncpg.Pool) -> None:
    """The guard's WHEN clause lets the hot path's changes through without the function: each
    of them must be a row of record_transitions, or the table would no longer be the rule."""
    definition = await owner_pool.fetchval(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'records_state_guard'"
    )
    # PostgreSQL keeps (OLD.state, NEW.state) NOT IN (...) as one OR per pair.
    pair = r"\(old\.state <> '(\w+)'::text\) OR \(new\.state <> '(\w+)'::text\)"
    unchecked = set(re.findall(pair, definition))
    rows = await owner_pool.fetch("SELECT from_state, to_state FROM record_transitions")
    assert len(unchecked) == 4
    assert unchecked <= {(r["from_state"], r["to_state"]) for r in rows}


async def test_every_pair_of_states_is_accepted_or_refused(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(
        owner_pool, tenant, schema, states=[a.value for a, _ in PAIRS], batch_state="IN_PROGRESS"
    )
    refused: list[tuple[RecordState, RecordState]] = []
    for (source, target), record_id in zip(PAIRS, arranged.record_ids, strict=True):
        try:
            async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
                status = await conn.execute(
                    "UPDATE records SET state = $2 WHERE tenant_id = app_tenant() AND id = $1",
                    record_id,
                    target.value,
                )
            assert status == "UPDATE 1"
        except asyncpg.CheckViolationError as error:
            assert error.constraint_name == "records_state_transition"
            assert f"from {source.value} to {target.value}" in str(error)
            assert str(record_id) in str(error)
            refused.append((source, target))
    legal = [(a, b) for a, b in PAIRS if lifecycle.allowed(a, b)]
    assert sorted(set(PAIRS) - set(refused)) == sorted(legal)
    # What stayed is what each record was given or kept.
    rows = await owner_pool.fetch(
        "SELECT id, state FROM records WHERE batch_id = $1", arranged.batch_id
    )
    now = {r["id"]: RecordState(r["state"]) for r in rows}
    for (source, target), record_id in zip(PAIRS, arranged.record_ids, strict=True):
        assert now[record_id] is (target if lifecycle.allowed(source, target) else source)


# Each illegal change beside a legal one to the same state, in one statement.
@pytest.mark.parametrize(
    ("legal", "source", "target"),
    [
        (S.FAILED, S.CLAIMED, S.PENDING),
        (S.ISSUED, S.REVOKED, S.INVITED),
        (S.QUEUED, S.CANCELLED, S.ISSUED),
    ],
)
async def test_an_illegal_change_in_a_group_rolls_back_the_whole_statement(
    owner_pool: asyncpg.Pool,
    app_pool: asyncpg.Pool,
    legal: RecordState,
    source: RecordState,
    target: RecordState,
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(owner_pool, tenant, schema, states=[legal.value, source.value])
    with pytest.raises(asyncpg.CheckViolationError, match=f"from {source} to {target}"):
        async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
            await conn.execute(
                "UPDATE records SET state = $2 WHERE tenant_id = app_tenant() AND batch_id = $1",
                arranged.batch_id,
                target.value,
            )
    rows = await owner_pool.fetch(
        "SELECT state FROM records WHERE batch_id = $1 ORDER BY row_number", arranged.batch_id
    )
    assert [r["state"] for r in rows] == [legal.value, source.value]


async def test_the_owner_is_refused_too(owner_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(owner_pool, tenant, schema, states=["INVITED"])
    with pytest.raises(asyncpg.CheckViolationError, match="from INVITED to QUEUED"):
        await owner_pool.execute(
            "UPDATE records SET state = 'QUEUED' WHERE id = $1", arranged.record_ids[0]
        )


async def test_fail_records_changes_only_records_in_the_given_states(
    owner_pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    schema = await insert_schema(owner_pool, tenant)
    arranged = await insert_batch(
        owner_pool, tenant, schema, states=["QUEUED", "ISSUED", "PENDING", "INVITED", "QUEUED"]
    )
    other = await insert_batch(owner_pool, tenant, schema, states=["QUEUED"])
    ids = arranged.record_ids
    failures = [Failure(i, "BROKEN", "it broke", attempt=3) for i in ids[:4]]
    # A record named with another batch is left alone.
    failures.append(Failure(ids[4], "BROKEN", "it broke", batch_id=other.batch_id))
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        changed = await lifecycle.fail_records(
            conn, tenant, failures, from_states=(S.QUEUED, S.ISSUED)
        )
    assert changed == 2
    rows = await owner_pool.fetch(
        "SELECT state, error_code, attempt FROM records WHERE batch_id = $1 ORDER BY row_number",
        arranged.batch_id,
    )
    assert [(r["state"], r["error_code"]) for r in rows] == [
        ("FAILED", "BROKEN"),
        ("FAILED", "BROKEN"),
        ("PENDING", None),
        ("INVITED", None),
        ("QUEUED", None),
    ]
    assert rows[0]["attempt"] == 3


async def test_fail_records_refuses_a_state_failed_cannot_follow(app_pool: asyncpg.Pool) -> None:
    tenant = uuid.uuid4()
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        with pytest.raises(ValueError, match="cannot fail from CLAIMED"):
            await lifecycle.fail_records(
                conn, tenant, [Failure(uuid.uuid4(), "X", "x")], from_states=(S.CLAIMED,)
            )


async def batch_state(
    conn: asyncpg.Connection,
    counts: dict[RecordState, int],
    *,
    stored: BatchState = BatchState.IN_PROGRESS,
    cancelled: bool = False,
    total: int | None = None,
) -> BatchState:
    value = await conn.fetchval(
        "SELECT batch_state_of($1, $2, $3, $4::text[], $5::bigint[])",
        stored.value,
        cancelled,
        sum(counts.values()) if total is None else total,
        [s.value for s in counts],
        list(counts.values()),
    )
    return BatchState(value)


@pytest.mark.parametrize(
    ("counts", "stored", "cancelled", "expected"),
    [
        ({S.PENDING: 3}, BatchState.QUEUED, False, BatchState.QUEUED),
        ({S.PENDING: 1, S.QUEUED: 2}, BatchState.QUEUED, False, BatchState.QUEUED),
        ({S.QUEUED: 2, S.ISSUED: 1}, BatchState.QUEUED, False, BatchState.IN_PROGRESS),
        ({S.QUEUED: 2, S.INVITED: 1}, BatchState.QUEUED, False, BatchState.IN_PROGRESS),
        ({S.INVITED: 2, S.CLAIMED: 1}, BatchState.IN_PROGRESS, False, BatchState.COMPLETED),
        (
            {S.INVITED: 2, S.FAILED: 1},
            BatchState.IN_PROGRESS,
            False,
            BatchState.COMPLETED_WITH_ERRORS,
        ),
        ({S.PENDING: 2, S.FAILED: 1}, BatchState.IN_PROGRESS, False, BatchState.IN_PROGRESS),
        # Every failure retried: records PENDING again, the batch stays IN_PROGRESS.
        ({S.PENDING: 3}, BatchState.IN_PROGRESS, False, BatchState.IN_PROGRESS),
        ({S.PENDING: 3}, BatchState.QUEUED, True, BatchState.CANCELLED),
        ({S.INVITED: 1, S.CANCELLED: 2}, BatchState.CANCELLED, True, BatchState.CANCELLED),
        ({S.PENDING: 1}, BatchState.FAILED, False, BatchState.FAILED),
        ({}, BatchState.QUEUED, False, BatchState.COMPLETED),
    ],
)
async def test_batch_state_of(
    owner_pool: asyncpg.Pool,
    counts: dict[RecordState, int],
    stored: BatchState,
    cancelled: bool,
    expected: BatchState,
) -> None:
    async with owner_pool.acquire() as conn:
        assert await batch_state(conn, counts, stored=stored, cancelled=cancelled) is expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(list(RecordState)), max_size=40))
async def test_a_batch_is_complete_exactly_when_python_counts_every_record_finished(
    owner_pool: asyncpg.Pool, states: list[RecordState]
) -> None:
    counts = {s: states.count(s) for s in set(states)}
    async with owner_pool.acquire() as conn:
        state = await batch_state(conn, counts)
    every_finished = all(s in TERMINAL_RECORD_STATES for s in states)
    assert (state in {BatchState.COMPLETED, BatchState.COMPLETED_WITH_ERRORS}) == every_finished


def _rule(
    stored: str | None,
    cancelled: bool | None,
    total: int | None,
    states: list[str | None] | None,
    ns: list[int | None] | None,
) -> str:
    """The batch state rule stated in Python, with SQL's NULLs: arrays paired as unnest pairs
    them (the shorter padded with NULLs), a NULL state counted nowhere, a NULL count as 0, and
    a comparison with a NULL total false."""
    if cancelled:
        return "CANCELLED"
    if stored == "FAILED":
        return "FAILED"
    pairs = [(s, n or 0) for s, n in itertools.zip_longest(states or [], ns or []) if s is not None]
    finished = sum(n for s, n in pairs if s not in {"PENDING", "QUEUED", "ISSUED"})
    unstarted = sum(n for s, n in pairs if s in {"PENDING", "QUEUED"})
    failed = sum(n for s, n in pairs if s == "FAILED")
    if total is not None and finished >= total:
        return "COMPLETED_WITH_ERRORS" if failed > 0 else "COMPLETED"
    if total is not None and unstarted >= total and stored == "QUEUED":
        return "QUEUED"
    return "IN_PROGRESS"


_STATE_NAMES = st.sampled_from([s.value for s in RecordState] + ["DELIVERED"])


def _sometimes_null(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # NULL about one time in eight: often enough to be tried, rarely enough that most
    # examples reach the counting.
    return st.integers(0, 7).flatmap(lambda k: st.none() if k == 0 else values)


@settings(max_examples=400, deadline=None)
@given(
    stored=_sometimes_null(st.sampled_from([s.value for s in BatchState])),
    cancelled=_sometimes_null(st.sampled_from([False, False, False, True])),
    total=_sometimes_null(st.integers(0, 12)),
    states=_sometimes_null(st.lists(_sometimes_null(_STATE_NAMES), max_size=6)),
    ns=_sometimes_null(st.lists(_sometimes_null(st.integers(0, 6)), max_size=6)),
)
async def test_batch_state_of_with_nulls_and_unpaired_arrays(
    owner_pool: asyncpg.Pool,
    stored: str | None,
    cancelled: bool | None,
    total: int | None,
    states: list[str | None] | None,
    ns: list[int | None] | None,
) -> None:
    value = await owner_pool.fetchval(
        "SELECT batch_state_of($1, $2, $3, $4::text[], $5::bigint[])",
        stored,
        cancelled,
        total,
        states,
        ns,
    )
    assert value == _rule(stored, cancelled, total, states, ns)


def test_revocable_states_are_those_revocation_may_follow() -> None:
    assert {s for s in RecordState if lifecycle.allowed(s, S.REVOKED)} == REVOCABLE_RECORD_STATES
