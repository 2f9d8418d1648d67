"""outbox_claim's promises on generated workloads (hypothesis), in a database of its own.

Each example makes a few tenants, each with 1-4 batches of PENDING records and a
``dispatch_weight`` (a ``tenant_limits`` row, or none: weight 1), then runs rounds as the relay
does, as the relay's role: ``outbox_claim`` with a window of ``L`` records and a quantum of
``Q``, ``outbox_mark_queued``, commit; between rounds workers finish some QUEUED records.

How the claim chooses (one relay): every tenant key has a virtual time ``v``; each pick takes
the tenant with the least, at ``e = max(v, C)`` where ``C`` is the clock read when the claim
began, gives it ``n <= Q`` records and sets ``v = e + n / w``. A tenant the claim could give
nothing (a cap, nothing PENDING) is skipped for the rest of the claim; the claim ends when its
budget, ``min(L, max_in_flight - QUEUED)``, is spent or every tenant is skipped, and then moves
``C`` up to the least ``v`` of the tenants it did not skip, or, when it skipped them all, to
the ``e`` of its last pick. From this, by induction over picks and claims: between claims
every tenant has ``C <= e <= C + Q / w`` (picks are made at the least ``e``, so at a ``e`` that
never decreases within a claim, and add at most ``Q / w``; the tenants the new clock is taken
from were all at least at the last pick's ``e``; a skipped tenant's ``v`` stays while ``C``
only grows).

A tenant is *dispatchable* while the claim could give it a record: it has PENDING records in
a batch below the batch cap, is below its tenant cap, and the overall cap leaves room (these
workloads set no sending rate). Its wait runs from its last pick (or from the start of the
round in which it became dispatchable) to its next pick, while it stays dispatchable. The
promises checked:

(a) No tenant waits more than its share. During tenant ``i``'s wait, another tenant ``j`` is
    picked only while its virtual time is at most ``e_i`` (ties go either way); ``j`` started
    the wait at least at ``e_i - Q / w_i`` and each pick moves it by at most ``Q / w_j``, so
    ``j`` receives at most ``Q * w_j / w_i + Q`` records, and all others together at most
    ``B_i = Q * (W - w_i) / w_i + Q * (N - 1)`` (``W`` the weights' sum, ``N`` the tenants).
    A claim that passes a dispatchable tenant over has spent its whole budget on the others,
    so with windows of ``L`` records a tenant waits at most ``floor(B_i / L)`` rounds in a
    row. Checked: each ``j`` stays within its part of every wait, a round passing ``i`` over
    claims its whole budget, and the budgets of the rounds in a row passing ``i`` over add up
    to at most ``B_i``. (A tenant whose key is dropped and made again starts anew at the
    clock, so a tenant uploading batch after batch could take ``Q`` more each time; these
    workloads upload everything before the first round.)
(b) Weights hold within ±10 % while every tenant stays backlogged and nothing holds one back:
    over rounds in which the clock moves by ``D``, tenant ``i`` receives ``w_i * D ± Q``
    records, so in any window of ``T`` records its share is ``w_i / W`` within
    ``Q * (W / w_i + N) / T`` of it, relatively: within 10 % once ``T >= 10 * Q * (W / w_min +
    N)``. Checked over every such window of rounds.
(c) After every round, QUEUED records are within the caps: overall, per tenant, per batch.

The claim's order of rows is the order of its picks, which is what (a) reads.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from dataclasses import dataclass

from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.fixtures.dispatch import FairDb, add_pending_batch, claim_and_queue, drain, finish
from workers.relay.relay import DispatchLimits

ROUNDS = 14
# Sums of a tenant's picks divided by its weight, in floating point: a bound that is a whole
# number of records may come out a hair below it.
SLACK = 1e-6
# By tenant and batch (an index), not a scan of every example's records.
COUNTS = """
SELECT batch_id, count(*) FILTER (WHERE state = 'PENDING') AS pending,
       count(*) FILTER (WHERE state = 'QUEUED') AS queued
FROM records WHERE tenant_id = ANY($1::uuid[]) AND batch_id = ANY($2::uuid[])
GROUP BY batch_id
"""


@dataclass(frozen=True)
class TenantSpec:
    weight: float | None  # None: no tenant_limits row, which weighs 1
    batches: tuple[int, ...]  # the batches' sizes

    @property
    def w(self) -> float:
        return 1.0 if self.weight is None else self.weight


@dataclass(frozen=True)
class Workload:
    tenants: tuple[TenantSpec, ...]
    window: int
    limits: DispatchLimits
    # After each round, per tenant: the part of each of its batches' QUEUED records finished.
    finished: tuple[tuple[float, ...], ...]


@dataclass
class Arranged:
    tenant_of: dict[uuid.UUID, uuid.UUID]  # batch -> tenant
    weight: dict[uuid.UUID, float]  # tenant -> weight


@dataclass(frozen=True)
class BatchCount:
    tenant: uuid.UUID
    pending: int
    queued: int


weights = st.sampled_from([None, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0])
caps = st.none() | st.integers(1, 80)
workloads = st.builds(
    Workload,
    tenants=st.lists(
        st.builds(
            TenantSpec,
            weight=weights,
            batches=st.lists(st.integers(1, 150), min_size=1, max_size=4).map(tuple),
        ),
        min_size=2,
        max_size=5,
    ).map(tuple),
    window=st.integers(1, 150),
    limits=st.builds(
        DispatchLimits,
        max_in_flight=caps,
        tenant_in_flight=caps,
        batch_in_flight=caps,
        quantum=st.integers(1, 25),
    ),
    finished=st.lists(
        st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=5, max_size=5).map(tuple),
        min_size=ROUNDS,
        max_size=ROUNDS,
    ).map(tuple),
)


async def clean_slate(fair: FairDb) -> None:
    """Nothing PENDING or QUEUED, so the claim serves this example's tenants alone."""
    await drain(fair.relay)
    await fair.owner.execute("UPDATE records SET state = 'ISSUED' WHERE state = 'QUEUED'")


async def arrange(fair: FairDb, tenants: tuple[TenantSpec, ...]) -> Arranged:
    arranged = Arranged({}, {})
    for spec in tenants:
        tenant = uuid.uuid4()
        arranged.weight[tenant] = spec.w
        for rows in spec.batches:
            arranged.tenant_of[await add_pending_batch(fair.owner, tenant, rows)] = tenant
        if spec.weight is not None:
            await fair.owner.execute(
                "INSERT INTO tenant_limits (tenant_id, dispatch_weight) VALUES ($1, $2)",
                tenant,
                spec.weight,
            )
    return arranged


async def counts(fair: FairDb, arranged: Arranged) -> dict[uuid.UUID, BatchCount]:
    rows = await fair.owner.fetch(COUNTS, list(arranged.weight), list(arranged.tenant_of))
    return {
        r["batch_id"]: BatchCount(arranged.tenant_of[r["batch_id"]], r["pending"], r["queued"])
        for r in rows
    }


def room(cap: int | None, used: int) -> float:
    return math.inf if cap is None else cap - used


class Rooms:
    """What the claim may still give each tenant in this round, from the counts at its start."""

    def __init__(self, limits: DispatchLimits, batches: dict[uuid.UUID, BatchCount]) -> None:
        self._limits = limits
        self._batches = batches
        self._claimed: Counter[uuid.UUID] = Counter()  # per batch, in this round
        self._tenant_queued: Counter[uuid.UUID] = Counter()
        for b in batches.values():
            self._tenant_queued[b.tenant] += b.queued
        total = sum(b.queued for b in batches.values())
        self.budget = max(0, int(min(room(limits.max_in_flight, total), 10**9)))

    def take(self, batch: uuid.UUID) -> None:
        self._claimed[batch] += 1
        self._tenant_queued[self._batches[batch].tenant] += 1

    def dispatchable(self, tenant: uuid.UUID, budget_left: int) -> bool:
        limits = self._limits
        if budget_left <= 0 or room(limits.tenant_in_flight, self._tenant_queued[tenant]) <= 0:
            return False
        return any(
            b.pending - self._claimed[batch] > 0
            and room(limits.batch_in_flight, b.queued + self._claimed[batch]) > 0
            for batch, b in self._batches.items()
            if b.tenant == tenant
        )


def check_caps(limits: DispatchLimits, batches: dict[uuid.UUID, BatchCount]) -> None:
    per_tenant: Counter[uuid.UUID] = Counter()
    for batch, b in batches.items():
        per_tenant[b.tenant] += b.queued
        assert b.queued <= room(limits.batch_in_flight, 0), f"batch {batch}: {b.queued} QUEUED"
    for tenant, queued in per_tenant.items():
        assert queued <= room(limits.tenant_in_flight, 0), f"tenant {tenant}: {queued} QUEUED"
    total = sum(per_tenant.values())
    assert total <= room(limits.max_in_flight, 0), f"{total} QUEUED overall"


class Waits:
    """Promise (a): per waiting tenant, what the others received since its wait began."""

    def __init__(self, weight: dict[uuid.UUID, float], quantum: int) -> None:
        self._weight = weight
        self._quantum = quantum
        self._others: dict[uuid.UUID, Counter[uuid.UUID]] = {}
        self._passed_over: dict[uuid.UUID, int] = {}  # budgets of whole rounds without it

    def bound(self, waiting: uuid.UUID, other: uuid.UUID) -> int:
        w = self._weight
        return math.floor(self._quantum * w[other] / w[waiting] + self._quantum + SLACK)

    def share(self, waiting: uuid.UUID) -> int:
        return sum(self.bound(waiting, other) for other in self._weight if other != waiting)

    def round_starts(self, dispatchable: set[uuid.UUID]) -> None:
        for tenant in self._weight:
            if tenant not in dispatchable:
                self._others.pop(tenant, None)
                self._passed_over.pop(tenant, None)
            elif tenant not in self._others:
                self._others[tenant] = Counter()
                self._passed_over[tenant] = 0

    def served(self, tenant: uuid.UUID, still_dispatchable: bool) -> None:
        for waiting, others in self._others.items():
            if waiting != tenant:
                others[tenant] += 1
                assert others[tenant] <= self.bound(waiting, tenant), (
                    f"tenant {waiting} (weight {self._weight[waiting]}) waited while tenant "
                    f"{tenant} (weight {self._weight[tenant]}) got {others[tenant]} records, "
                    f"more than {self.bound(waiting, tenant)}"
                )
        if still_dispatchable:
            self._others[tenant] = Counter()
            self._passed_over[tenant] = 0
        else:
            self._others.pop(tenant, None)
            self._passed_over.pop(tenant, None)

    def round_ends(self, served: set[uuid.UUID], budget: int, claimed: int) -> None:
        for waiting in set(self._others) - served:
            assert claimed == budget, (
                f"tenant {waiting} was passed over by a round that claimed {claimed} of {budget}"
            )
            self._passed_over[waiting] += budget
            assert self._passed_over[waiting] <= self.share(waiting), (
                f"tenant {waiting} waited rounds worth {self._passed_over[waiting]} records, "
                f"more than its share {self.share(waiting)}"
            )


NOTHING_FINISHES = ((0.0,) * 5,) * ROUNDS
# Found by this test: every tenant ends a claim held back by a cap, one of them served alone
# in it; the others must not come back with credit for that claim.
HELD_BACK_TOGETHER = Workload(
    tenants=(
        TenantSpec(None, (1,)),
        TenantSpec(None, (1,)),
        TenantSpec(None, (20,)),
        TenantSpec(0.5, (17,)),
    ),
    window=4,
    limits=DispatchLimits(batch_in_flight=16, quantum=1),
    finished=(*NOTHING_FINISHES[:12], (0.0, 0.0, 0.25, 0.25, 0.0), NOTHING_FINISHES[0]),
)


@settings(max_examples=35, deadline=None)
@given(workload=workloads)
@example(workload=HELD_BACK_TOGETHER)
async def test_no_tenant_waits_beyond_its_share_and_the_caps_hold(
    fair_db: FairDb, workload: Workload
) -> None:
    await clean_slate(fair_db)
    try:
        arranged = await arrange(fair_db, workload.tenants)
        limits, waits = workload.limits, Waits(arranged.weight, workload.limits.quantum)
        tenants = list(arranged.weight)
        for finished in workload.finished:
            before = await counts(fair_db, arranged)
            if not any(b.pending for b in before.values()):
                break
            rooms = Rooms(limits, before)
            budget = min(workload.window, rooms.budget)
            waits.round_starts({t for t in arranged.weight if rooms.dispatchable(t, budget)})

            rows = await claim_and_queue(fair_db.relay, workload.window, limits)
            for n, row in enumerate(rows, start=1):
                rooms.take(row["batch_id"])
                tenant = row["tenant_id"]
                waits.served(tenant, rooms.dispatchable(tenant, budget - n))
            waits.round_ends({r["tenant_id"] for r in rows}, budget, len(rows))

            after = await counts(fair_db, arranged)
            check_caps(limits, after)
            for batch, b in after.items():  # workers finish some of what is in flight
                if done := math.floor(b.queued * finished[tenants.index(b.tenant)]):
                    await finish(fair_db.owner, batch, done)
    finally:
        await clean_slate(fair_db)


@dataclass(frozen=True)
class Backlogged:
    tenants: tuple[tuple[float | None, int], ...]  # weight, number of batches
    window: int
    quantum: int


backlogs = st.builds(
    Backlogged,
    tenants=st.lists(st.tuples(weights, st.integers(1, 3)), min_size=2, max_size=4).map(tuple),
    window=st.integers(1, 400),
    quantum=st.integers(1, 15),
)


@settings(max_examples=15, deadline=None)
@given(backlog=backlogs)
async def test_weights_hold_within_ten_percent_over_a_window(
    fair_db: FairDb, backlog: Backlogged
) -> None:
    q, n = backlog.quantum, len(backlog.tenants)
    w = [1.0 if x is None else x for x, _ in backlog.tenants]
    total_weight = sum(w)
    enough = 10 * q * (total_weight / min(w) + n)  # records a window needs, see (b)
    window = max(backlog.window, math.ceil(enough / 8))
    rounds = math.ceil(2 * enough / window)
    dispatched = rounds * window
    specs = []
    for (weight, batches), x in zip(backlog.tenants, w, strict=True):
        # Never runs dry: it receives at most x / W of what is dispatched plus the slack of (b).
        backlog_rows = math.ceil(x / total_weight * (dispatched + n * q) + q) + batches
        each = backlog_rows // batches
        last = backlog_rows - each * (batches - 1)
        specs.append(TenantSpec(weight, (each,) * (batches - 1) + (last,)))
    await clean_slate(fair_db)
    try:
        arranged = await arrange(fair_db, tuple(specs))
        tenants = list(arranged.weight)
        got: list[Counter[uuid.UUID]] = [Counter()]  # per tenant, after each round
        for _ in range(rounds):
            rows = await claim_and_queue(fair_db.relay, window, DispatchLimits(quantum=q))
            assert len(rows) == window
            got.append(got[-1] + Counter(r["tenant_id"] for r in rows))
        for start in range(len(got)):
            for end in range(start + 1, len(got)):
                per = {t: got[end][t] - got[start][t] for t in tenants}
                records = sum(per.values())
                if records < enough:
                    continue
                for t in tenants:
                    expected = arranged.weight[t] / total_weight
                    assert abs(per[t] / records - expected) <= 0.1 * expected, (
                        f"rounds {start}-{end}: tenant weight {arranged.weight[t]} got "
                        f"{per[t]} of {records}, expected {expected:.3f} of them"
                    )
    finally:
        await clean_slate(fair_db)
