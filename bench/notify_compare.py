"""Upload validation side by side with GOV.UK Notify's ``RecipientCSV`` on the same files.

For each medium (EMAIL, then SMS) one file of ``--rows`` distinct rows is generated: the
recipient column and five attributes (name, age, born, score, level); UK mobile numbers,
half written nationally (07950 123456), half with +44. The two files differ only in the
recipient column's header, which each side names its own way (``email``/``phone`` here,
``email address``/``phone number`` for Notify, whose template uses the five attributes as
placeholders). Each side validates the whole file from bytes in memory:

- here: ``services.uploads.validator.FileValidator`` (1 MiB chunks, CSV reading, header,
  every value rule, duplicate recipients, the report), as an upload runs it: through
  ``services.uploads.parallel.validate_file`` with a ``ValidationPool`` of
  ``--validation-processes`` (default: the cores; 0 or 1: in this process alone), started
  before the timing as the service starts it;
- Notify: ``RecipientCSV(...).has_errors`` and ``len()``, in a fresh process of the
  Python given by ``--notify-python`` (a virtualenv with notifications-utils installed),
  which times itself, so neither side pays the other's start-up.

Rounds alternate A B B A so that a change of the machine's load hits both sides alike.

    python -m bench.notify_compare --notify-python /work/notify-venv/bin/python

The Notify side needs its own interpreter (notifications-utils wants Python 3.13 and its own
dependencies), made once:

    git clone https://github.com/alphagov/notifications-utils
    python3.13 -m venv /work/notify-venv
    /work/notify-venv/bin/pip install ./notifications-utils
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from credbatch.schema.model import Attribute, AttributeType, Medium, SchemaVersion
from services.uploads.parallel import validate_file
from services.uploads.validation_pool import ValidationPool
from services.uploads.validator import FileValidator

CHUNK = 1 << 20
SCHEMA = SchemaVersion(
    uuid.uuid4(),
    1,
    "Bench",
    (
        Attribute("name", AttributeType.STRING, required=True),
        Attribute("age", AttributeType.INTEGER),
        Attribute("born", AttributeType.DATE),
        Attribute("score", AttributeType.NUMBER),
        Attribute("level", AttributeType.ENUM, enum_values=("Gold", "Silver", "Bronze")),
    ),
)

NOTIFY_SCRIPT = """
import sys, time
from notifications_utils.recipients import RecipientCSV
from notifications_utils.template import PlainTextEmailTemplate, SMSMessageTemplate
medium, path = sys.argv[1], sys.argv[2]
body = "Hello ((name)), ((age)) ((born)) ((score)) ((level))"
if medium == "EMAIL":
    template = PlainTextEmailTemplate({"content": body, "subject": "s", "template_type": "email"})
else:
    template = SMSMessageTemplate({"content": body, "template_type": "sms"})
data = open(path, encoding="utf-8").read()
started = time.perf_counter()
cpu = time.process_time()
recipients = RecipientCSV(data, template=template, allow_international_sms=True)
errors = recipients.has_errors
rows = len(recipients)
print(time.perf_counter() - started, rows, errors, time.process_time() - cpu)
"""


def generate(rows: int, medium: Medium, notify: bool) -> str:
    """The file's text; ``notify`` names the recipient column the way Notify reads it."""
    if medium is Medium.EMAIL:
        column = "email address" if notify else "email"
    else:
        column = "phone number" if notify else "phone"
    levels = ("Gold", "Silver", "Bronze")
    lines = [f"{column},name,age,born,score,level"]
    for i in range(rows):
        if medium is Medium.EMAIL:
            recipient = f"holder{i}@example.com"
        elif i % 2:
            recipient = f"+44795{i:07d}"
        else:
            recipient = f"0795{i // 1000:04d} {i % 1000:03d}"
        lines.append(
            f"{recipient},Holder {i},{18 + i % 70},19{50 + i % 50}-0{1 + i % 9}-1{i % 10},"
            f"{i % 1000}.25,{levels[i % 3]}"
        )
    return "\r\n".join(lines) + "\r\n"


class Run:
    """One side's run: wall seconds and CPU seconds (every process of that side)."""

    def __init__(self, wall: float, cpu: float) -> None:
        self.wall = wall
        self.cpu = cpu


def _cpu_of(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


def ours(data: bytes, medium: Medium, pool: ValidationPool | None) -> Run:
    pids = pool.pids() if pool is not None else []
    cpu = time.process_time() + _cpu_of(pids)
    started = time.perf_counter()
    validator = FileValidator(
        SCHEMA, [medium], default_region="GB", max_rows=10_000_000, max_bytes=1 << 31
    )
    asyncio.run(validate_file(validator, _chunks(data), pool))
    report = validator.report()
    elapsed = time.perf_counter() - started
    assert report.valid, report.errors[:3]
    if pool is not None and pool.pids() != pids:
        raise RuntimeError("a validation process was replaced during the run")
    return Run(elapsed, time.process_time() + _cpu_of(pids) - cpu)


def notify(python: str, path: Path, medium: Medium, rows: int) -> Run:
    out = subprocess.run(
        [python, "-c", NOTIFY_SCRIPT, medium.value, str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert int(out[1]) == rows and out[2] == "False", out
    return Run(float(out[0]), float(out[3]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2, help="A B B A rounds")
    parser.add_argument("--notify-python", default="/work/notify-venv/bin/python")
    parser.add_argument("--validation-processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    pool = ValidationPool(args.validation_processes) if args.validation_processes > 1 else None
    if pool is not None:
        asyncio.run(pool.start())
    print(
        f"rows: {args.rows:,} (recipient + 5 attributes), {os.cpu_count()} cores, "
        f"{args.validation_processes} validation processes, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    try:
        for medium in (Medium.EMAIL, Medium.SMS):
            _compare(args, medium, pool)
    finally:
        if pool is not None:
            pool.close()
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


def _compare(args: argparse.Namespace, medium: Medium, pool: ValidationPool | None) -> None:
    ours_data = generate(args.rows, medium, notify=False).encode()
    with tempfile.NamedTemporaryFile("w", suffix=".csv", encoding="utf-8") as file:
        file.write(generate(args.rows, medium, notify=True))
        file.flush()
        path = Path(file.name)
        runs: dict[str, list[Run]] = {"ours": [], "notify": []}
        for _ in range(args.rounds):
            for side in ("ours", "notify", "notify", "ours"):
                if side == "ours":
                    runs[side].append(ours(ours_data, medium, pool))
                else:
                    runs[side].append(notify(args.notify_python, path, medium, args.rows))
    times = {side: [run.wall for run in found] for side, found in runs.items()}
    cpu = {side: statistics.median(run.cpu for run in found) for side, found in runs.items()}
    rate = {side: args.rows / statistics.median(t) for side, t in times.items()}
    print(
        f"{medium.value:>5}: ours {rate['ours']:9,.0f} rows/s, Notify {rate['notify']:8,.0f} "
        f"rows/s, ratio {rate['ours'] / rate['notify']:.1f}x (medians of "
        f"{len(times['ours'])} runs each; ours "
        f"{', '.join(f'{args.rows / t:,.0f}' for t in times['ours'])}; Notify "
        f"{', '.join(f'{args.rows / t:,.0f}' for t in times['notify'])}); CPU per "
        f"1,000 rows: ours {cpu['ours'] / args.rows * 1000 * 1000:.1f} ms, Notify "
        f"{cpu['notify'] / args.rows * 1000 * 1000:.1f} ms (ratio "
        f"{cpu['notify'] / cpu['ours']:.1f}x)"
    )


if __name__ == "__main__":
    main()
