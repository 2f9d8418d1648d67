"""Issuance and the relay's fair claim with the retention purge switched on and off in windows.

``bench/purge_ab.py`` compares whole issuance runs with and without the purge; on this machine
one run's rate differs from the next by more than 5 %, whatever runs beside it. Here one long
run is cut into windows instead, the janitor's purge (``workers.janitor.janitor.purge``, as
the janitor's role, with the janitor's pause and share) switched on for every B window and
off for every A window, A B B A: the two sides share the run's database, processes and
warm-up, and a drift of the machine weighs on both alike.

1. Issuance: ``bench/issuance.py`` (uploads, relay, 2 workers, SMTP sink, each its own
   process, no certificates) on one batch of ``--rows``; each window counts the records
   that reached INVITED. The first ``--settle`` seconds after each switch are left out, so
   a window measures the purge running (or not), not the moment it starts or stops.
2. The relay's claim as ``bench/fairness.py`` runs it (its database, 1,000 active batches,
   windows of 500 claimed, marked QUEUED and committed), ``--claims`` claims a window.

The purge erases the due records of the history ``bench/history.py`` built (at scale 1:
1,000,000 records in 5,000 batches); the due slice is made due again first.

Each part prints every window, the sides' medians and the ratio within each A B B A group
(mean, median, spread): read the groups, since a long run drifts.

    python -m bench.purge_windows --database i24hist_history [--rows 150000] [--window 15]
        [--settle 3] [--rounds 2] [--share 0.02] [--pause 0.1] [--claims 60]
        [--skip-issuance] [--skip-claim]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from bench import fairness
from bench.history import RETENTION_DAYS, _make_due, sizes
from bench.issuance import backends_cpu, database_backends
from bench.status import _with_database
from credbatch.config import Settings, load_settings
from credbatch.db.migrate import ensure_database, migrate
from workers.janitor.janitor import PassResult, purge

ROOT = Path(__file__).resolve().parents[1]
SIDES = "ABBA"


class Purge:
    """The janitor's purge of the history, started and stopped at will."""

    def __init__(self, pool: asyncpg.Pool, database: str, args: argparse.Namespace) -> None:
        self.pool, self.database, self.args = pool, database, args
        self.result = PassResult()
        self.seconds = 0.0
        self.cpu = 0.0
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def start(self) -> None:
        self._stop = asyncio.Event()
        self._started = time.monotonic()
        self._backends = database_backends(self.database)
        self._task = asyncio.create_task(
            purge(
                self.pool,
                RETENTION_DAYS,
                self.args.step_rows,
                self._stop,
                self.result,
                self.args.pause,
                self.args.share,
            )
        )

    async def stop(self) -> None:
        assert self._task is not None
        if self._task.done():
            raise SystemExit("the purge ran out of due records: a window without it counted B")
        self._stop.set()
        await self._task
        self.seconds += time.monotonic() - self._started
        self.cpu += backends_cpu(self._backends, database_backends(self.database))

    def summary(self) -> str:
        purged = max(self.result.purged, 1)
        return (
            f"purge: {self.result.purged:,} records in {self.seconds:.0f} s of B windows"
            f" ({self.result.purged / max(self.seconds, 1e-9):,.0f}/s; 1,000,000 would take"
            f" {1_000_000 / max(self.result.purged / max(self.seconds, 1e-9), 1e-9) / 60:.0f}"
            f" min), its backend {self.cpu * 1000 / purged:.3f} ms CPU a record"
        )


async def alternate(
    purger: Purge,
    rounds: int,
    measure: Callable[[], Awaitable[float]],
    unit: str,
    settle: float,
) -> dict[str, list[float]]:
    """Measure once per window, the purge on in B windows; print each window."""
    sides: dict[str, list[float]] = {"A": [], "B": []}
    for side in SIDES * rounds:
        if side == "B":
            purger.start()
        await asyncio.sleep(settle)
        figure = await measure()
        if side == "B":
            await purger.stop()
        sides[side].append(figure)
        print(f"  {side}: {figure:,.2f} {unit}; load {os.getloadavg()[0]:.1f}", flush=True)
    return sides


def medians(sides: dict[str, list[float]], what: str) -> None:
    """Print the sides' medians, and B / A within each A B B A group: the figure to read when
    the run drifts (each group's two sides are next to each other in time)."""
    a, b = (statistics.median(sides[k]) for k in "AB")
    print(f"median {what}: alone {a:,.2f}, with the purge {b:,.2f} ({b / a:.3f})", flush=True)
    ratios = [
        statistics.mean(sides["B"][k : k + 2]) / statistics.mean(sides["A"][k : k + 2])
        for k in range(0, len(sides["A"]), 2)
    ]
    spread = f", standard deviation {statistics.stdev(ratios):.3f}" if len(ratios) > 1 else ""
    print(
        f"{what}, with / alone per A B B A group: {', '.join(f'{r:.3f}' for r in ratios)};"
        f" mean {statistics.mean(ratios):.3f}, median {statistics.median(ratios):.3f}{spread}",
        flush=True,
    )


async def _issuance_database(prefix: str, owner: asyncpg.Connection) -> str:
    """The throw-away database bench/issuance.py made, once its batch is uploaded."""
    for _ in range(600):
        name = await owner.fetchval(
            "SELECT datname FROM pg_database WHERE datname LIKE $1 || '%'", prefix
        )
        if name is not None:
            return str(name)
        await asyncio.sleep(0.1)
    raise SystemExit("bench/issuance.py made no database")


async def issuance_windows(base: Settings, purger: Purge, args: argparse.Namespace) -> None:
    prefix = f"credbatch_bench_pw{uuid.uuid4().hex[:6]}_"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "issuance.py"),
        *("--rows", str(args.rows), "--certificates", "without", "--workers", "2"),
        *("--database-prefix", prefix),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    server = await asyncpg.connect(_with_database(base.database_url, "postgres"))
    try:
        name = await _issuance_database(prefix, server)
    finally:
        await server.close()
    conn = await asyncpg.connect(_with_database(base.database_url, name))
    try:
        count = "SELECT count(*) FROM records WHERE state = 'INVITED'"
        # Past the migrations, the upload and the first groups: the steady state.
        while True:
            if process.returncode is not None:
                raise SystemExit(f"bench/issuance.py exited {process.returncode}")
            with contextlib.suppress(asyncpg.UndefinedTableError):
                if await conn.fetchval(count) >= args.rows * 0.05:
                    break
            await asyncio.sleep(0.5)

        async def rate() -> float:
            before, started = await conn.fetchval(count), time.monotonic()
            await asyncio.sleep(args.window - args.settle)
            after = await conn.fetchval(count)
            if after >= args.rows * 0.95:
                raise SystemExit(f"--rows {args.rows} ran out before the windows ended")
            return float(after - before) / (time.monotonic() - started)

        print(f"issuance, {args.rows:,} rows, 2 workers, no certificates ({name}):", flush=True)
        sides = await alternate(purger, args.rounds, rate, "records/s", args.settle)
        medians(sides, "records/s")
    finally:
        await conn.close()
        # bench/issuance.py stops its processes and drops its database and vhost on SIGINT.
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        _out, err = await process.communicate()
        if process.returncode != -signal.SIGINT:
            print(err.decode(), file=sys.stderr)


async def claim_windows(base: Settings, purger: Purge, args: argparse.Namespace) -> None:
    owner_url = _with_database(base.database_url, fairness.DATABASE)
    await ensure_database(owner_url)
    await migrate(owner_url)
    # Rebuilt when an earlier run left fewer than its 1,000,000 PENDING records.
    await fairness.arrange(owner_url, rebuild=False)
    owner = await asyncpg.connect(owner_url)
    relay = await asyncpg.connect(_with_database(base.relay_database_url, fairness.DATABASE))
    windows: list[list[float]] = []
    try:
        for _ in range(20):  # the relay's connection is long-lived: plans and caches warm
            await fairness.window(relay)
            await fairness.finish(owner)

        reads: list[int] = []
        blocks = "SELECT blks_read FROM pg_stat_database WHERE datname = current_database()"

        async def claims() -> float:
            durations: list[float] = []
            read_before = await owner.fetchval(blocks)
            for n in range(1, args.claims + 1):
                took, _rows = await fairness.window(relay)
                durations.append(took * 1000)
                await fairness.finish(owner)
                if n % 20 == 0:  # as bench/fairness.py: autovacuum's pace on these tables
                    await owner.execute(
                        "VACUUM dispatch_in_flight, dispatch_batches, dispatch_tenants"
                    )
            windows.append(durations)
            await asyncio.sleep(0.6)  # the statistics collector's pace (500 ms)
            reads.append(await owner.fetchval(blocks) - read_before)
            return fairness.percentile(durations, 0.95)

        print(
            f"relay claim, window {fairness.WINDOW}, {args.claims} claims a window"
            f" ({fairness.DATABASE}), each window's p95:",
            flush=True,
        )
        sides = await alternate(purger, args.rounds, claims, "ms", 0.0)
        medians(sides, "claim p95 ms of the windows")
        order = SIDES * args.rounds
        for side in "AB":
            pooled = [d for s, w in zip(order, windows, strict=True) if s == side for d in w]
            # Blocks the claim's database read from outside shared buffers: pages of its own
            # that the purge's reads of the history pushed out.
            read = sum(n for s, n in zip(order, reads, strict=True) if s == side)
            print(
                f"claims of side {side} pooled: "
                + ", ".join(
                    f"{name} {fairness.percentile(pooled, q):.1f} ms"
                    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
                )
                + f" (n={len(pooled)}); {read * 2 / len(order):,.0f} blocks read a window",
                flush=True,
            )
    finally:
        await relay.close()
        await owner.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="the history bench/history.py built")
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--window", type=float, default=15.0, help="seconds a window")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds left out a window")
    parser.add_argument("--rounds", type=int, default=2, help="A B B A groups")
    parser.add_argument("--claims", type=int, default=60, help="relay claims a window")
    parser.add_argument("--pause", type=float, default=Settings.janitor_step_pause)
    parser.add_argument("--share", type=float, default=Settings.janitor_share)
    parser.add_argument("--step-rows", type=int, default=1000)
    parser.add_argument("--skip-claim", action="store_true")
    parser.add_argument("--skip-issuance", action="store_true")
    args = parser.parse_args()
    base = load_settings()
    owner_url = _with_database(base.database_url, args.database)
    conn = await asyncpg.connect(owner_url, command_timeout=None)
    try:
        scale = await conn.fetchval("SELECT scale FROM bench_history_meta")
        await _make_due(conn, sizes(scale))
    finally:
        await conn.close()
    print(
        f"machine: {os.cpu_count()} cores; history {args.database} (scale {scale}); janitor"
        f" steps of {args.step_rows:,}, pause {args.pause:g} s, share {args.share:g};"
        f" windows of {args.window:g} s ({args.settle:g} s left out after each switch)",
        flush=True,
    )
    janitor_url = _with_database(base.janitor_database_url, args.database)
    pool = await asyncpg.create_pool(janitor_url, min_size=1, max_size=1)
    purger = Purge(pool, args.database, args)
    try:
        if not args.skip_issuance:
            await issuance_windows(base, purger, args)
        if not args.skip_claim:
            await claim_windows(base, purger, args)
    finally:
        await pool.close()
    print(purger.summary(), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
