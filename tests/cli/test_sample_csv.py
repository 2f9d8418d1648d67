"""`credbatch sample-csv SCHEMA --medium … -o FILE`."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.fixtures.cli_org import Org
from tests.fixtures.cli_system import System


def test_sample_has_medium_columns_then_attributes(
    system: System, org: Org, tmp_path: Path
) -> None:
    path = tmp_path / "sample.csv"
    result = system.cli(
        "sample-csv",
        org.schema,
        "--medium",
        "email",
        "--medium",
        "sms",
        "-o",
        str(path),
        token=org.token,
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    assert [c.strip().lower() for c in rows[0]] == [
        "email",
        "phone",
        "full_name",
        "level",
        "completed_on",
    ]
    assert len(rows) == 2
    assert "full_name" in result.stdout  # the column table


def test_unknown_schema(system: System, org: Org, tmp_path: Path) -> None:
    result = system.cli(
        "sample-csv",
        "schemas/00000000-0000-0000-0000-000000000000",
        "--medium",
        "email",
        "-o",
        str(tmp_path / "x.csv"),
        token=org.token,
    )
    assert result.returncode == 1
    assert "not_found" in result.stderr
    assert not (tmp_path / "x.csv").exists()
