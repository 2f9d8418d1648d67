"""``bench/issuance.py --against REV``: this tree and another revision, in turns, in one sitting.

This machine's speed moves by a third from one hour to the next, so a figure measured
yesterday compares the machine more than the code. Here REV is extracted (``git archive``)
into a scratch folder and both trees run their own ``bench/issuance.py`` as they are, each
with its own package first on ``PYTHONPATH`` (its own migrations, services and workers, the
same virtualenv), alternating ABBA: round 1 this tree then REV, round 2 REV then this tree,
and so on. Each side's figures are the median over its rounds; the ratios are this tree's over
REV's. A revision whose benchmark knows no ``--certificates`` runs every configuration.

The CPU per record of "all processes" sums what each side's benchmark reports for its own
processes and its database's backends (RabbitMQ's figure is the broker's whole CPU, other
virtual hosts included, so it is left out of the sum and shown apart).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_RATE = re.compile(r"^\s*(\d workers?, with(?:out)? certificates): +([\d,]+) records/s")
_CPU = re.compile(r"CPU ms per record: (.*); machine")
# The broker serves every virtual host of the machine: not this run's alone.
_SHARED = frozenset({"rabbitmq"})

Figures = dict[str, dict[str, float]]


def extract(revision: str, into: Path) -> str:
    """Extracts ``revision``'s tree into ``into``; returns its short commit id."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", revision],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return commit


def parse(output: str) -> Figures:
    """{configuration: {"records/s": .., "<component>": CPU ms per record, ..}}."""
    figures: Figures = {}
    label = ""
    for line in output.splitlines():
        if rate := _RATE.match(line):
            label = rate.group(1)
            figures[label] = {"records/s": float(rate.group(2).replace(",", ""))}
        elif (cpu := _CPU.search(line)) and label:
            for part in cpu.group(1).split(", "):
                name, _, value = part.rpartition(" ")
                figures[label][name] = float(value)
            figures[label]["all processes"] = sum(
                value
                for name, value in figures[label].items()
                if name not in _SHARED and name != "records/s"
            )
    return figures


def run_side(tree: Path, rows: int, certificates: str, workers: int | None = None) -> Figures:
    command = [sys.executable, str(tree / "bench" / "issuance.py"), "--rows", str(rows)]
    knows = subprocess.run(
        [*command[:2], "--help"], cwd=tree, capture_output=True, text=True, env=_env(tree)
    )
    if "--certificates" in knows.stdout:
        command += ["--certificates", certificates]
    if workers is not None:
        if "--workers" not in knows.stdout:
            raise SystemExit(f"{tree}: its benchmark knows no --workers")
        command += ["--workers", str(workers)]
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True, env=_env(tree))
    if done.returncode != 0:
        raise SystemExit(f"{tree}: the benchmark failed\n{done.stdout}\n{done.stderr}")
    print(done.stdout, end="", flush=True)
    return parse(done.stdout)


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree)}


def compare(
    revision: str, rows: int, rounds: int, certificates: str, workers: int | None = None
) -> None:
    with tempfile.TemporaryDirectory(prefix="credbatch-against-") as folder:
        commit = extract(revision, Path(folder))
        sides = {"this tree": ROOT, commit: Path(folder)}
        runs: dict[str, list[Figures]] = defaultdict(list)
        for round_ in range(rounds):
            order = list(sides) if round_ % 2 == 0 else list(reversed(sides))
            for side in order:
                print(f"--- round {round_ + 1}: {side}", flush=True)
                runs[side].append(run_side(sides[side], rows, certificates, workers))
    report(runs, "this tree", commit)


def median_of(runs: list[Figures], label: str, name: str) -> float | None:
    values = [run[label][name] for run in runs if label in run and name in run[label]]
    return statistics.median(values) if values else None


def report(runs: dict[str, list[Figures]], ours: str, theirs: str) -> None:
    print(f"\nmedians over {len(runs[ours])} runs a side; ratio = this tree / {theirs}")
    labels = [label for label in runs[ours][0] if label in runs[theirs][0]]
    for label in labels:
        print(f"{label}:")
        names = list(runs[ours][0][label])
        for name in names:
            a, b = median_of(runs[ours], label, name), median_of(runs[theirs], label, name)
            if a is None or b is None:
                continue
            unit = "" if name == "records/s" else " ms CPU per record"
            print(f"  {name:>22}: {a:9.2f} vs {b:9.2f}{unit}  ratio {a / b if b else 0:.3f}")
