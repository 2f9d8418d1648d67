"""Peak memory and CPU of validating one upload, the validator alone (no gRPC, no database).

The file is ``bench/upload.py``'s (EMAIL + SMS, five attributes), generated in 1 MiB chunks
and never held whole; it is validated as an accept-and-store upload runs it
(``services.uploads.parallel.validate_file`` with a spool), by this process alone or with a
``ValidationPool``. Run one size per process (peak RSS is the process's):

    python -m bench.validation_memory --rows 100000 --validation-processes 2
    python -m bench.validation_memory --rows 1000000 --validation-processes 2

It prints this process's peak RSS (the uploads service's share) and each pool process's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
import uuid
from collections.abc import AsyncIterator

from bench.upload import ATTRIBUTES, generate
from credbatch.schema.model import Medium, SchemaVersion
from services.uploads.parallel import validate_file
from services.uploads.spool import RowSpool
from services.uploads.validation_pool import ValidationPool
from services.uploads.validator import FileValidator

SCHEMA = SchemaVersion(uuid.uuid4(), 1, "Bench", ATTRIBUTES)


def _status(pid: int, key: str) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(key)


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _chunks(rows: int) -> AsyncIterator[bytes]:
    for chunk in generate(rows):
        yield chunk


async def run(rows: int, processes: int) -> None:
    pool = ValidationPool(processes) if processes > 1 else None
    if pool is not None:
        await pool.start()
    pids = pool.pids() if pool is not None else []
    cpu = time.process_time()
    pool_cpu = sum(_cpu(pid) for pid in pids)
    started = time.perf_counter()
    validator = FileValidator(
        SCHEMA, (Medium.EMAIL, Medium.SMS), max_rows=10_000_000, max_bytes=1 << 31
    )
    with RowSpool([a.name for a in ATTRIBUTES], 1 << 31) as spool:
        await validate_file(validator, _chunks(rows), pool, spool)
        report = validator.report()
        assert report.valid and spool.rows == rows, report.errors[:3]
    wall = time.perf_counter() - started
    own = time.process_time() - cpu
    others = sum(_cpu(pid) for pid in pids) - pool_cpu
    peaks = ", ".join(f"{_status(pid, 'VmHWM'):.1f}" for pid in pids) or "-"
    print(
        f"rows {rows:,}, validation processes {processes}: {rows / wall:,.0f} rows/s, "
        f"CPU {own:.2f} s here + {others:.2f} s in the pool "
        f"({(own + others) / rows * 1e6:.1f} us per row); peak RSS here "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MB, pool "
        f"{peaks} MB; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    if pool is not None:
        pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--validation-processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.validation_processes))


if __name__ == "__main__":
    main()
