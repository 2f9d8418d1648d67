"""`credbatch batches resend`: a batch invited by the running workers is invited again, each
holder mailed once more; an observer may not, and an unknown record is named."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from tests.fixtures.cli_org import Org, row, upload_rows
from tests.fixtures.cli_system import System


def mails(system: System) -> int:
    return sum(1 for path in system.mail_dir.iterdir() if path.is_file())


def test_resend_invites_every_invited_record_again(
    system: System, org: Org, tmp_path: Path
) -> None:
    name = upload_rows(system, org, tmp_path / "resend.csv", 2)
    done = system.cli("status", name, "--watch", token=org.token, timeout=180)
    assert done.returncode == 0, done.stderr + system.log_tail("worker")
    assert row(done.stdout, "state") == "COMPLETED"
    before = mails(system)

    observer = system.token(roles=["observer"], tenant=org.tenant, departments=["default"])
    refused = system.cli("batches", "resend", name, token=observer)
    assert refused.returncode == 4
    assert "may not call ResendInvitations" in refused.stderr
    unknown = str(uuid.uuid4())
    missing = system.cli("batches", "resend", name, "--record", unknown, token=org.token)
    assert missing.returncode == 1
    assert unknown in missing.stderr

    result = system.cli("batches", "resend", name, "--request-id", "lost", token=org.token)
    assert result.returncode == 0, result.stderr
    assert f"{name}: 2 invitation(s) queued to be sent again" in result.stderr
    again = system.cli("status", name, "--watch", token=org.token, timeout=180)
    assert again.returncode == 0, again.stderr + system.log_tail("worker")
    assert row(again.stdout, "invited") == "2"
    deadline = time.monotonic() + 60
    while mails(system) < before + 2:
        assert time.monotonic() < deadline, system.log_tail("smtp-sink")
        time.sleep(0.2)
    repeated = system.cli("batches", "resend", name, "--request-id", "lost", token=org.token)
    assert repeated.returncode == 0, repeated.stderr
    assert f"{name}: 2 invitation(s) queued to be sent again" in repeated.stderr
