"""Issuance with and without a retention purge beside it, in turns (ABBA).

Side A runs ``bench/issuance.py`` (2 workers, no certificates: uploads, relay, workers, SMTP
sink, each its own process, in a throw-away database) alone; side B runs the same while the
janitor's purge (``workers.janitor.janitor.purge``, as the janitor's role, steps of
``--step-rows`` and ``--pause`` between them, as the janitor runs it) erases the due records
of the history database that ``bench/history.py`` built (at scale 1: 1,000,000 records in
5,000 batches; the purge goes on from where the previous round left it). The two share the
server, its WAL and the machine's cores, as a janitor and the issuance of one deployment do.
Rounds alternate A B B A, so a drift of the machine's load weighs on both sides alike.

Per round: issuance's records/s and CPU per record (its own processes and its database's
backends, as ``bench/issuance.py`` prints them), the machine's load average, and on side B
the records the purge erased meanwhile and its backend's CPU per record erased.

    python -m bench.purge_ab --database i24hist_history [--rows 10000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import asyncpg

from bench.history import RETENTION_DAYS, _make_due, sizes
from bench.issuance import backends_cpu, database_backends
from bench.issuance_ab import parse
from bench.status import _with_database
from credbatch.config import load_settings
from workers.janitor.janitor import PassResult, purge

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "2 workers, without certificates"


async def issuance(rows: int, prefix: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "issuance.py"),
        "--rows",
        str(rows),
        "--certificates",
        "without",
        "--workers",
        "2",
        "--database-prefix",
        prefix,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"bench/issuance.py exited {process.returncode}")
    return out.decode()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True, help="the history bench/history.py built")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2, help="ABBA groups")
    parser.add_argument("--pause", type=float, default=0.1, help="the janitor's step pause")
    parser.add_argument("--step-rows", type=int, default=1000)
    parser.add_argument("--database-prefix", default="credbatch_bench_")
    args = parser.parse_args()
    base = load_settings()
    owner_url = _with_database(base.database_url, args.database)
    janitor_url = _with_database(base.janitor_database_url, args.database)
    conn = await asyncpg.connect(owner_url, command_timeout=None)
    try:
        scale = await conn.fetchval("SELECT scale FROM bench_history_meta")
        await _make_due(conn, sizes(scale))
        due = await conn.fetchval(
            "SELECT count(*) FROM batches WHERE purged_at IS NULL AND filename LIKE 'holders-%'"
            " AND completed_at < now() - make_interval(days => $1)",
            RETENTION_DAYS,
        )
    finally:
        await conn.close()
    print(
        f"history {args.database} (scale {scale}): {due:,} batches due for the purge;"
        f" issuance {args.rows:,} rows, {CONFIG}; purge steps of {args.step_rows:,},"
        f" pause {args.pause:g} s",
        flush=True,
    )
    pool = await asyncpg.create_pool(janitor_url, min_size=1, max_size=1)
    sides: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    try:
        for side in "ABBA" * args.rounds:
            result = PassResult()
            stop = asyncio.Event()
            task = None
            backends = database_backends(args.database)
            load_before = os.getloadavg()[0]
            started = time.monotonic()
            if side == "B":
                task = asyncio.create_task(
                    purge(pool, RETENTION_DAYS, args.step_rows, stop, result, args.pause)
                )
            output = await issuance(args.rows, args.database_prefix)
            took = time.monotonic() - started
            ran_out = task is not None and task.done()
            stop.set()
            if task is not None:
                await task
            purge_cpu = backends_cpu(backends, database_backends(args.database))
            figures = parse(output).get(CONFIG)
            if figures is None:
                raise SystemExit(f"no figures in bench/issuance.py's output:\n{output}")
            load = (load_before + os.getloadavg()[0]) / 2
            figures["load"] = load
            sides[side].append(figures)
            line = (
                f"{side}: {figures['records/s']:,.0f} records/s, all processes"
                f" {figures['all processes']:.2f} ms CPU per record (postgres backends"
                f" {figures['postgres backends']:.2f}); load {load:.1f}"
            )
            if side == "B":
                if ran_out:
                    line += " (the purge ran out of due records before the end)"
                line += (
                    f"; purge {result.purged:,} records in {took:.0f} s"
                    f" ({result.purged / took:,.0f}/s), its backend"
                    f" {purge_cpu * 1000 / max(result.purged, 1):.3f} ms CPU per record"
                )
            print(line, flush=True)
    finally:
        await pool.close()
    a, b = sides["A"], sides["B"]
    for key in ("records/s", "all processes", "postgres backends", "load"):
        ma = statistics.median(f[key] for f in a)
        mb = statistics.median(f[key] for f in b)
        print(f"median {key:<18} alone {ma:8.2f}  with the purge {mb:8.2f}  ({mb / ma:.2f})")


if __name__ == "__main__":
    asyncio.run(main())
