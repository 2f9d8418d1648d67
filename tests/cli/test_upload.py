"""`credbatch upload`: a valid file becomes a batch; an invalid one shows a table of problems,
and --errors-out holds every problem (more than the 100 the error status carries)."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

from tests.fixtures.cli_org import Org, batch_csv, row, upload
from tests.fixtures.cli_system import System

BAD_ROWS = 150


def _upload(system: System, org: Org, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return upload(system, org, path, "--email-template", org.email_template, *extra)


def test_valid_file_becomes_a_batch(system: System, org: Org, tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text(batch_csv(5))
    result = _upload(system, org, path)
    assert result.returncode == 0, result.stderr
    name = result.stdout.strip()
    assert name.startswith("batches/")
    assert "accepted 5 record(s)" in result.stderr


def test_validate_only_creates_nothing(system: System, org: Org, tmp_path: Path) -> None:
    path = tmp_path / "check.csv"
    path.write_text(batch_csv(3))
    result = _upload(system, org, path, "--validate-only")
    assert result.returncode == 0, result.stderr
    assert "is valid: 3 row(s)" in result.stderr
    assert result.stdout.strip() == ""


def _bad_file(path: Path) -> None:
    lines = ["email,full_name,level,completed_on"]
    lines += [f"not-an-email-{i},Holder {i},basic,2026-11-20" for i in range(BAD_ROWS)]
    lines.append("ok@example.org,Last,expert,2026-13-40")
    path.write_text("\n".join(lines) + "\n")


def test_invalid_file_shows_a_table_and_writes_every_problem(
    system: System, org: Org, tmp_path: Path
) -> None:
    path = tmp_path / "bad.csv"
    _bad_file(path)
    errors = tmp_path / "errors.csv"
    result = _upload(system, org, path, "--errors-out", str(errors))
    assert result.returncode == 5, result.stderr
    table = result.stdout
    # Spreadsheet row numbers: header is row 1, so the first data row is row 2.
    assert "row" in table and "column" in table and "message" in table
    first = next(line for line in table.splitlines() if "│ 2 " in line or "┃ 2 " in line)
    assert "email" in first
    assert f"{BAD_ROWS + 2:,} problem(s)" in table or "problem(s)" in table
    assert "Traceback" not in result.stderr
    with errors.open(newline="") as handle:
        problems = list(csv.DictReader(handle))
    # Every bad email, plus the enum and the date of the last row: the full report.
    assert len(problems) == BAD_ROWS + 2
    assert {p["column"] for p in problems[:BAD_ROWS]} == {"email"}
    assert [int(p["row"]) for p in problems[:BAD_ROWS]] == list(range(2, BAD_ROWS + 2))
    last = {p["column"] for p in problems if int(p["row"]) == BAD_ROWS + 2}
    assert last == {"level", "completed_on"}


def test_missing_column_is_named(system: System, org: Org, tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("email,full_name\nok@example.org,A\n")
    result = _upload(system, org, path)
    assert result.returncode == 5
    assert "level" in result.stdout


def test_bad_header_is_one_message_not_a_table(system: System, org: Org, tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text(batch_csv(2))
    result = upload(system, org, path, certificate_template="certificateTemplates/not-a-uuid")
    assert result.returncode == 5
    assert "header.certificate_template" in result.stderr
    assert result.stdout == ""


def test_violation_fields_become_row_and_column() -> None:
    from credbatch.cli.upload import Problem, problem_from_violation

    assert problem_from_violation("rows[12].email", "bad", "INVALID_EMAIL") == Problem(
        12, "email", "INVALID_EMAIL", "bad"
    )
    assert problem_from_violation("rows[4].`Date of ``birth`", "m", "C") == Problem(
        4, "Date of `birth", "C", "m"
    )
    assert problem_from_violation("rows[3]", "m", "C") == Problem(3, "", "C", "m")
    assert problem_from_violation("file.level", "m", "C") == Problem(0, "level", "C", "m")
    # The prose of servers before field paths.
    assert problem_from_violation("row 12, column email", "bad", "INVALID_EMAIL") == Problem(
        12, "email", "INVALID_EMAIL", "bad"
    )
    assert problem_from_violation("row 3", "m", "C") == Problem(3, "", "C", "m")
    assert problem_from_violation("file, column level", "m", "C") == Problem(0, "level", "C", "m")
    assert problem_from_violation("file", "m", "C") == Problem(0, "", "C", "m")
    assert problem_from_violation("header.schema", "m", "C") == Problem(
        0, "header.schema", "C", "m"
    )


def test_reminder_days_are_the_batchs_schedule(system: System, org: Org, tmp_path: Path) -> None:
    path = tmp_path / "remind.csv"
    path.write_text(batch_csv(2))
    result = _upload(system, org, path, "--reminder-days", "3,10")
    assert result.returncode == 0, result.stderr
    shown = system.cli("status", result.stdout.strip(), token=org.token)
    assert row(shown.stdout, "reminder days") == "3,10"


def test_reminder_days_out_of_shape_are_refused(system: System, org: Org, tmp_path: Path) -> None:
    path = tmp_path / "remind.csv"
    path.write_text(batch_csv(2))
    result = _upload(system, org, path, "--reminder-days", "10,3")
    assert result.returncode == 5
    assert "header.reminder_days" in result.stderr
    result = _upload(system, org, path, "--reminder-days", "soon")
    assert result.returncode == 5
    assert "--reminder-days" in result.stderr
