"""Benchmark: what the statement triggers on records cost a worker's outcome statement.

On the fairness benchmark's database (``python -m bench.fairness`` arranges it), as the
owner: groups of ``--group`` records go QUEUED -> ISSUED -> INVITED in one UPDATE each, as a
worker's issue and outcome transactions move them, in a transaction rolled back afterwards
(the data stays as it was).
Timed with the triggers on, then with ``session_replication_role = replica`` (which turns
ordinary triggers off), alternating, so a busy machine weighs on both alike.

    python -m bench.record_triggers [--group 30] [--rounds 300] [--database NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

import asyncpg

from bench.fairness import DATABASE, _with_database
from credbatch.config import load_settings

SETUP = "UPDATE records SET state = 'QUEUED' WHERE tenant_id = $1 AND id = ANY($2::uuid[])"
# A worker's two record statements: the issue transaction, then the outcome.
ISSUE = """
UPDATE records SET state = 'ISSUED', issued_at = now(), updated_at = now()
WHERE tenant_id = $1 AND id = ANY($2::uuid[])
"""
OUTCOME = """
UPDATE records SET state = 'INVITED', invited_at = now(), updated_at = now()
WHERE tenant_id = $1 AND id = ANY($2::uuid[])
"""


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--group", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--database", default=DATABASE)
    args = parser.parse_args()
    owner_url = _with_database(load_settings().database_url, args.database)
    conn = await asyncpg.connect(owner_url)
    try:
        rows = await conn.fetch(
            "SELECT tenant_id, id FROM records WHERE state = 'ISSUED' LIMIT $1",
            args.group * 50,
        )
        if len(rows) < args.group * 50:
            raise SystemExit("run python -m bench.fairness first (it leaves ISSUED records)")
        groups = [rows[i : i + args.group] for i in range(0, len(rows), args.group)]
        on: list[float] = []
        off: list[float] = []
        load = os.getloadavg()[0]
        for n in range(args.rounds):
            group = groups[n % len(groups)]
            # Same tenant per group is not guaranteed: use the first record's tenant only.
            tenant = group[0]["tenant_id"]
            ids = [r["id"] for r in group if r["tenant_id"] == tenant]
            for triggers_off, into in ((False, on), (True, off)):
                tx = conn.transaction()
                await tx.start()
                if triggers_off:
                    await conn.execute("SET LOCAL session_replication_role = replica")
                await conn.execute(SETUP, tenant, ids)
                started = time.perf_counter()
                await conn.execute(ISSUE, tenant, ids)
                await conn.execute(OUTCOME, tenant, ids)
                into.append((time.perf_counter() - started) / len(ids))
                await tx.rollback()
        print(
            f"issue + outcome UPDATEs of {args.group} records: with the triggers "
            f"{statistics.median(on) * 1000:.3f} ms a record (median), without "
            f"{statistics.median(off) * 1000:.3f} ms; {args.rounds} rounds, load average "
            f"{load:.1f} -> {os.getloadavg()[0]:.1f}"
        )
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
