"""`credbatch batches update-contact`: a holder's address corrected from the report's
record_id is mailed again at the new address; a bad address is named, nothing sent."""

from __future__ import annotations

import csv
import time
import uuid
from pathlib import Path

from tests.fixtures.cli_org import Org, row, upload_rows
from tests.fixtures.cli_system import System


def mails(system: System) -> list[Path]:
    return [path for path in system.mail_dir.iterdir() if path.is_file()]


def test_a_corrected_address_is_invited_again(system: System, org: Org, tmp_path: Path) -> None:
    name = upload_rows(system, org, tmp_path / "typo.csv", 2)
    done = system.cli("status", name, "--watch", token=org.token, timeout=180)
    assert done.returncode == 0, done.stderr + system.log_tail("worker")
    assert row(done.stdout, "state") == "COMPLETED"
    report = tmp_path / "report.csv"
    assert system.cli("report", name, "-o", str(report), token=org.token).returncode == 0
    with report.open(encoding="utf-8") as f:
        first = next(csv.DictReader(f))
    assert first["contact_updated_at"] == ""
    record_id = first["record_id"]
    before = len(mails(system))

    refused = system.cli(
        "batches", "update-contact", name, record_id, "--email", "ada@@example", token=org.token
    )
    assert refused.returncode == 5  # INVALID_ARGUMENT
    assert "email" in refused.stderr and "not a valid email address" in refused.stderr

    fixed = f"fixed-{uuid.uuid4().hex[:8]}@example.org"
    result = system.cli(
        "batches", "update-contact", name, record_id, "--email", fixed, token=org.token
    )
    assert result.returncode == 0, result.stderr
    assert "email; invitation queued to be sent again" in result.stderr
    again = system.cli("status", name, "--watch", token=org.token, timeout=180)
    assert again.returncode == 0, again.stderr + system.log_tail("worker")
    assert row(again.stdout, "invited") == "2"
    deadline = time.monotonic() + 60
    while len(mails(system)) < before + 1:
        assert time.monotonic() < deadline, system.log_tail("smtp-sink")
        time.sleep(0.2)
    assert any(fixed in path.read_text(errors="replace") for path in mails(system))

    assert system.cli("report", name, "-o", str(report), token=org.token).returncode == 0
    with report.open(encoding="utf-8") as f:
        corrected = next(r for r in csv.DictReader(f) if r["record_id"] == record_id)
    assert corrected["email"] == fixed and corrected["contact_updated_at"].endswith("Z")
