"""`credbatch batches revoke`: a batch issued by the running workers, one credential revoked
by the id the report shows, then the rest; ids it cannot revoke are named and change nothing."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

from tests.fixtures.cli_org import Org, row, upload_rows
from tests.fixtures.cli_system import System


def read(report: Path) -> list[dict[str, str]]:
    with report.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


def test_revoke_one_credential_then_the_rest(system: System, org: Org, tmp_path: Path) -> None:
    name = upload_rows(system, org, tmp_path / "revoke.csv", 3)
    done = system.cli("status", name, "--watch", token=org.token, timeout=180)
    assert done.returncode == 0, done.stderr + system.log_tail("worker")
    assert row(done.stdout, "state") == "COMPLETED"
    report = tmp_path / "report.csv"
    assert system.cli("report", name, "-o", str(report), token=org.token).returncode == 0
    first = read(report)[0]["credential_id"]

    observer = system.token(roles=["observer"], tenant=org.tenant, departments=["default"])
    refused = system.cli("batches", "revoke", name, "--reason", "no", token=observer)
    assert refused.returncode == 4
    assert "may not call RevokeRecords" in refused.stderr
    unknown = str(uuid.uuid4())
    invalid = system.cli(
        "batches", "revoke", name, "--record", unknown, "--reason", "x", token=org.token
    )
    assert invalid.returncode == 5
    assert unknown in invalid.stderr

    one = system.cli(
        "batches", "revoke", name, "--record", first, "--reason", "wrong grade", token=org.token
    )
    assert one.returncode == 0, one.stderr
    assert row(one.stdout, "revoked") == "1"
    assert row(one.stdout, "invited") == "2"
    assert f"{name}: 1 credential(s) revoked" in one.stderr
    rest = system.cli(
        "batches", "revoke", name.removeprefix("batches/"), "--reason", "recalled", token=org.token
    )
    assert rest.returncode == 0, rest.stderr
    assert row(rest.stdout, "revoked") == "3"
    assert f"{name}: 2 credential(s) revoked" in rest.stderr
    again = system.cli("batches", "revoke", name, "--reason", "recalled", token=org.token)
    assert again.returncode == 0
    assert "nothing to revoke" in again.stderr

    assert system.cli("report", name, "-o", str(report), token=org.token).returncode == 0
    rows = read(report)
    reasons = {r["credential_id"]: (r["state"], r["error_message"]) for r in rows}
    assert reasons[first] == ("RECORD_STATE_REVOKED", "wrong grade")
    assert sorted(reasons.values()) == [
        ("RECORD_STATE_REVOKED", "recalled"),
        ("RECORD_STATE_REVOKED", "recalled"),
        ("RECORD_STATE_REVOKED", "wrong grade"),
    ]
