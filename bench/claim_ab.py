"""Benchmark: this tree's fair claim against another revision's, on the same data, in turns.

Machine load here swings by a factor of two from one minute to the next, so two runs of
``bench.fairness`` minutes apart compare the machine more than the code. This one puts both
claims in one database, the one ``bench.fairness`` arranges (1,000,000 PENDING records in
1,000 batches of 100 tenants), and alternates their windows (ABBA order): each window of 500
is claimed, marked QUEUED and committed, and its records then become ISSUED, as in
``bench.fairness``. Every window of either side meets the same data and the same load.

The other revision's claim is built, not copied by hand: its ``credbatch`` package is
extracted (``git archive``) into a scratch folder, its own migration runner builds a scratch
database, and that database's ``outbox_claim`` (the overload with the most parameters) is
installed here as ``outbox_claim_before``. Its body must run against this tree's tables
(true of every revision since the dispatch tables of the fair claim).

Prints, per side, the CPU time the database server process spent in the claim statement
(read from ``/proc/<pid>/schedstat``: what the claim costs, whatever the machine's load; the
server runs on this machine) and the statement's p50/p95/p99 latency, and the ratios.

With ``--rollback`` each claim is rolled back rather than marked and committed: every window
of either side then claims the same 500 records from the same dispatch keys, with nothing in
flight, which compares the claims' code alone and consumes none of the PENDING records.

    python -m bench.claim_ab --against REV [--windows N] [--vacuum-every N] [--database NAME]
                             [--rollback]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from bench.fairness import (
    CAPS,
    DATABASE,
    MARK,
    QUANTUM,
    WINDOW,
    _with_database,
    arrange,
    finish,
    percentile,
)
from credbatch.config import RELAY_ROLE, load_settings
from credbatch.db.migrate import ensure_database, migrate

ROOT = Path(__file__).resolve().parent.parent
CLAIM = "SELECT tenant_id, batch_id, record_id FROM {name}($1, $2, $3, $4, NULL, NULL, $5)"
# Creates and migrates the database at argv[1] with the code of the checkout it runs in
# (its PYTHONPATH): how a benchmark applies another revision's database code.
MIGRATE_SCRIPT = (
    "import asyncio, sys\n"
    "from credbatch.db.migrate import ensure_database, migrate\n"
    "asyncio.run(ensure_database(sys.argv[1]))\n"
    "asyncio.run(migrate(sys.argv[1]))\n"
)
_DEFINITION = """
SELECT pg_get_functiondef(p.oid) FROM pg_proc p
WHERE p.proname = 'outbox_claim' AND p.pronamespace = 'public'::regnamespace
ORDER BY p.pronargs DESC LIMIT 1
"""


def _claim_of(revision: str, owner_url: str, database: str) -> str:
    """``revision``'s outbox_claim, as the definition its own migrations leave (built in the
    scratch database ``<database>_claim_<commit>``)."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", revision],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    scratch_url = _with_database(owner_url, f"{database}_claim_{commit}")
    with tempfile.TemporaryDirectory(prefix=f"claim-{commit}-") as folder:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", commit, "credbatch"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        subprocess.run(
            [sys.executable, "-c", MIGRATE_SCRIPT, scratch_url],
            cwd=folder,
            env={**os.environ, "PYTHONPATH": folder},
            check=True,
        )
    definition: str = asyncio.run(_fetch_definition(scratch_url))
    return definition


async def _fetch_definition(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        definition: str = await conn.fetchval(_DEFINITION)
        return definition
    finally:
        await conn.close()


async def _install(owner: asyncpg.Connection, definition: str, name: str) -> None:
    """``definition`` of an ``outbox_claim``, created again as the function ``name``."""
    head = "CREATE OR REPLACE FUNCTION public.outbox_claim("
    if head not in definition:
        raise SystemExit("an outbox_claim definition is not in the expected form")
    renamed = definition.replace(head, f"CREATE OR REPLACE FUNCTION public.{name}(", 1)
    await owner.execute(f"DROP FUNCTION IF EXISTS {name}")
    await owner.execute(renamed)
    await owner.execute(f"GRANT EXECUTE ON FUNCTION {name} TO {RELAY_ROLE}")


def _cpu_ns(pid: int) -> int:
    """The nanoseconds process ``pid`` has run on a CPU (first field of its schedstat)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


async def _window(
    relay: asyncpg.Connection, claim: str, rollback: bool = False
) -> tuple[float, float]:
    """One window; the claim statement's latency and its server process's CPU, seconds.

    With ``rollback`` the claim is rolled back instead of marked and committed: every window
    then meets the same state (the same records, the dispatch keys as they were).
    """
    pid = relay.get_server_pid()
    transaction = relay.transaction()
    await transaction.start()
    try:
        cpu = _cpu_ns(pid)
        started = time.perf_counter()
        rows = await relay.fetch(claim, WINDOW, *CAPS, QUANTUM)
        took = time.perf_counter() - started
        cpu = _cpu_ns(pid) - cpu
        if rows and not rollback:
            await relay.fetchval(
                MARK, [r["tenant_id"] for r in rows], [r["record_id"] for r in rows]
            )
    except BaseException:
        await transaction.rollback()
        raise
    if rollback:
        await transaction.rollback()
    else:
        await transaction.commit()
    return took, cpu / 1e9


def _summary(durations: list[float]) -> str:
    return (
        f"p50 {statistics.median(durations) * 1000:.2f} ms, "
        f"p95 {percentile(durations, 0.95) * 1000:.2f} ms, "
        f"p99 {percentile(durations, 0.99) * 1000:.2f} ms"
    )


async def _compare(
    owner_url: str,
    relay_url: str,
    definition: str,
    windows: int,
    vacuum_every: int,
    rollback: bool = False,
) -> None:
    owner = await asyncpg.connect(owner_url)
    relay = await asyncpg.connect(relay_url)
    # Both sides are copies made the same way, so neither is favoured by being the original.
    functions = {"this tree": "outbox_claim_this", "before": "outbox_claim_before"}
    claims = {side: CLAIM.format(name=name) for side, name in functions.items()}
    durations: dict[str, list[float]] = {side: [] for side in claims}
    cpu: dict[str, list[float]] = {side: [] for side in claims}
    try:
        await _install(owner, await owner.fetchval(_DEFINITION), functions["this tree"])
        await _install(owner, definition, functions["before"])
        load_before = os.getloadavg()[0]
        for n in range(windows):
            order = list(claims) if n % 4 in (0, 3) else list(reversed(claims))
            for side in order:
                took, used = await _window(relay, claims[side], rollback)
                durations[side].append(took)
                cpu[side].append(used)
                if not rollback:
                    await finish(owner)
            if vacuum_every and (n + 1) % vacuum_every == 0:
                await owner.execute("VACUUM dispatch_in_flight, dispatch_batches, dispatch_tenants")
                # The first window after a VACUUM reads cold pages: counted for neither side.
                await _window(relay, claims["this tree"], rollback)
                if not rollback:
                    await finish(owner)
        ratios = [
            a / b for a, b in zip(durations["this tree"], durations["before"], strict=True) if b
        ]
        print(
            f"claim of {WINDOW} (quantum {QUANTUM}, caps {CAPS}), {windows} windows each, "
            f"alternating; load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}"
        )
        for side, values in durations.items():
            print(
                f"  {side:>9}: server CPU per claim {statistics.mean(cpu[side]) * 1000:.2f} ms "
                f"(median {statistics.median(cpu[side]) * 1000:.2f}); latency {_summary(values)}"
            )
        medians = {side: statistics.median(values) for side, values in durations.items()}
        print(
            f"  this tree / before: server CPU "
            f"{statistics.mean(cpu['this tree']) / statistics.mean(cpu['before']):.3f}; "
            f"latency p50 {medians['this tree'] / medians['before']:.3f}, "
            f"median of per-window ratios {statistics.median(ratios):.3f}"
        )
    finally:
        for name in functions.values():
            await owner.execute(f"DROP FUNCTION IF EXISTS {name}")
        await relay.close()
        await owner.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--against", required=True, help="the revision to compare with")
    parser.add_argument("--windows", type=int, default=200, help="windows per side")
    parser.add_argument("--vacuum-every", type=int, default=20)
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument(
        "--rollback",
        action="store_true",
        help="roll every claim back: each window meets the same state, nothing is consumed",
    )
    args = parser.parse_args()
    settings = load_settings()
    owner_url = _with_database(settings.database_url, args.database)
    relay_url = _with_database(settings.relay_database_url, args.database)
    definition = _claim_of(args.against, settings.database_url, args.database)
    asyncio.run(ensure_database(owner_url))
    asyncio.run(migrate(owner_url))
    asyncio.run(arrange(owner_url, rebuild=False))
    asyncio.run(
        _compare(owner_url, relay_url, definition, args.windows, args.vacuum_every, args.rollback)
    )


if __name__ == "__main__":
    main()
