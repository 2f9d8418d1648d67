"""`credbatch demo` (what `make demo` runs), scaled down, against the running system."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.cli.conftest import System

ROWS = 40


def test_demo_issues_every_record_and_prints_what_it_produced(
    system: System, tmp_path: Path
) -> None:
    out = tmp_path / "demo"
    result = system.cli(
        "demo",
        "--rows",
        str(ROWS),
        "--out-dir",
        str(out),
        "--mail-dir",
        str(system.mail_dir),
        timeout=240,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert f"{ROWS:,} records INVITED" in result.stdout
    for name in ("report.csv", "certificate.pdf", "invitation.eml", f"batch-{ROWS}.csv"):
        assert str(out / name) in result.stdout, name
        assert (out / name).stat().st_size > 0
    assert (out / "certificate.pdf").read_bytes().startswith(b"%PDF")
    with (out / "report.csv").open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == ROWS
    assert f"({ROWS:,} for this run)" in result.stdout


def test_demo_with_services_down(system: System, tmp_path: Path) -> None:
    result = system.cli(
        "demo",
        "--out-dir",
        str(tmp_path / "demo"),
        extra_env={"CREDBATCH_TEMPLATES_ADDR": "127.0.0.1:1"},
    )
    assert result.returncode == 3
    assert "cannot reach TemplateService" in result.stderr
