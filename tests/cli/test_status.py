"""`credbatch status BATCH [--watch]` and `credbatch report BATCH -o FILE [--state …]`: a batch
issued by the running workers, followed to completion, then reported."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.fixtures.cli_org import Org, batch_csv, upload, uploaded
from tests.fixtures.cli_system import System

ROWS = 20


@pytest.fixture(scope="module")
def issued(system: System, org: Org, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("status") / "batch.csv"
    path.write_text(batch_csv(ROWS))
    return uploaded(upload(system, org, path, "--email-template", org.email_template))


def test_watch_follows_the_batch_to_completion(system: System, org: Org, issued: str) -> None:
    result = system.cli("status", issued, "--watch", token=org.token, timeout=180)
    assert result.returncode == 0, result.stderr + system.log_tail("worker")
    assert f"{issued} COMPLETED" in result.stdout
    assert "invited" in result.stdout and f"{ROWS:,}" in result.stdout


def test_status_without_watch(system: System, org: Org, issued: str) -> None:
    system.cli("status", issued, "--watch", token=org.token, timeout=180)
    result = system.cli("status", issued.removeprefix("batches/"), token=org.token)
    assert result.returncode == 0, result.stderr
    assert "COMPLETED" in result.stdout and "100.0 %" in result.stdout


def test_report_lists_every_record(system: System, org: Org, issued: str, tmp_path: Path) -> None:
    system.cli("status", issued, "--watch", token=org.token, timeout=180)
    path = tmp_path / "report.csv"
    result = system.cli("report", issued, "-o", str(path), token=org.token)
    assert result.returncode == 0, result.stderr
    with path.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    assert len(records) == ROWS
    assert {r["state"].upper().removeprefix("RECORD_STATE_") for r in records} == {"INVITED"}
    assert all(r["cred_url"].startswith(system.env["CREDBATCH_PUBLIC_URL"]) for r in records)
    assert f"wrote {ROWS} record(s)" in result.stderr
    failed = tmp_path / "failed.csv"
    result = system.cli("report", issued, "-o", str(failed), "--state", "failed", token=org.token)
    assert result.returncode == 0, result.stderr
    with failed.open(newline="") as handle:
        assert list(csv.DictReader(handle)) == []


def test_unknown_batch(system: System, org: Org, tmp_path: Path) -> None:
    missing = "batches/00000000-0000-0000-0000-000000000000"
    assert system.cli("status", missing, token=org.token).returncode == 1
    watched = system.cli("status", missing, "--watch", token=org.token)
    assert watched.returncode == 1 and "not_found" in watched.stderr
    result = system.cli("report", missing, "-o", str(tmp_path / "r.csv"), token=org.token)
    assert result.returncode == 1
    assert not (tmp_path / "r.csv").exists()


def test_other_tenant_cannot_see_it(system: System, issued: str) -> None:
    stranger = system.token()
    result = system.cli("status", issued, token=stranger)
    assert result.returncode == 1 and "not_found" in result.stderr
