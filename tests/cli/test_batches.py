"""`credbatch batches list|cancel|retry`: the history with each role's visibility, and the
commands on one batch against the running workers."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.cli_org import Org, batch_csv, row, upload, upload_rows, uploaded
from tests.fixtures.cli_system import System


def test_list_follows_role_visibility(system: System, org: Org, tmp_path: Path) -> None:
    issuer = system.token(roles=["issuer"], tenant=org.tenant, sub="issuer-a", departments=["hr"])
    other = system.token(roles=["issuer"], tenant=org.tenant, sub="issuer-b", departments=["hr"])
    path = tmp_path / "mine.csv"
    path.write_text(batch_csv(2))
    name = uploaded(upload(system, org, path, token=issuer))
    mine = system.cli("batches", "list", token=issuer)
    assert mine.returncode == 0, mine.stderr
    assert name in mine.stdout and "issuer-a" in mine.stdout
    assert name not in system.cli("batches", "list", token=other).stdout
    assert name in system.cli("batches", "list", token=org.token).stdout
    filtered = system.cli("batches", "list", "--filter", 'creator = "nobody"', token=org.token)
    assert filtered.returncode == 0
    assert name not in filtered.stdout


def test_bad_filter_is_invalid_input(system: System, org: Org) -> None:
    result = system.cli("batches", "list", "--filter", "colour = blue", token=org.token)
    assert result.returncode == 5
    assert "colour" in result.stderr


def test_cancel_a_batch_the_worker_has_not_started(
    system: System, org: Org, tmp_path: Path
) -> None:
    observer = system.token(roles=["observer"], tenant=org.tenant, departments=["default"])
    with system.stopped("worker"):
        name = upload_rows(system, org, tmp_path / "cancel.csv", 4)
        refused = system.cli("batches", "cancel", name, token=observer)
        assert refused.returncode == 4, refused.stderr
        assert "not allowed" in refused.stderr and len(refused.stderr.splitlines()) == 1
        # A bare id, as every command that names a batch accepts.
        result = system.cli("batches", "cancel", name.removeprefix("batches/"), token=org.token)
        assert result.returncode == 0, result.stderr
        assert row(result.stdout, "state") == "CANCELLED"
        assert row(result.stdout, "cancelled") == "4"
        assert row(result.stdout, "invited") == "0"
        assert f"{name} CANCELLED: 4 record(s) not issued" in result.stderr
    status = system.cli("status", name, token=org.token)
    assert row(status.stdout, "state") == "CANCELLED"
    retry = system.cli("batches", "retry", name, token=org.token)
    assert retry.returncode == 1
    assert retry.stderr.strip() == (
        f"error: failed_precondition: {name} is cancelled; its records cannot be retried"
    )


def test_retry_issues_the_failed_records_again(system: System, org: Org, tmp_path: Path) -> None:
    # With the mail server down every invitation fails once its attempts are used up.
    with system.stopped("smtp-sink"):
        name = upload_rows(system, org, tmp_path / "retry.csv", 3)
        failed = system.cli("status", name, "--watch", token=org.token, timeout=180)
        assert failed.returncode == 0, failed.stderr + system.log_tail("worker")
        assert row(failed.stdout, "state") == "COMPLETED_WITH_ERRORS"
        assert row(failed.stdout, "failed") == "3"
    result = system.cli("batches", "retry", name, token=org.token)
    assert result.returncode == 0, result.stderr
    assert row(result.stdout, "failed") == "0"
    assert row(result.stdout, "state") == "IN_PROGRESS"
    assert f"{name}: 3 FAILED record(s) queued again" in result.stderr
    done = system.cli("status", name, "--watch", token=org.token, timeout=180)
    assert done.returncode == 0, done.stderr + system.log_tail("worker")
    assert row(done.stdout, "state") == "COMPLETED"
    assert row(done.stdout, "invited") == "3"

    # Both commands leave a finished batch as it is, and say so.
    again = system.cli("batches", "retry", name.removeprefix("batches/"), token=org.token)
    assert again.returncode == 0, again.stderr
    assert f"nothing to retry: {name} has no FAILED records" in again.stderr
    cancel = system.cli("batches", "cancel", name, token=org.token)
    assert cancel.returncode == 0, cancel.stderr
    assert row(cancel.stdout, "state") == "COMPLETED"
    assert f"nothing to cancel: {name} had already ended COMPLETED" in cancel.stderr


def test_cancel_and_retry_of_an_unknown_batch(system: System, org: Org) -> None:
    missing = "batches/00000000-0000-0000-0000-000000000000"
    for command in ("cancel", "retry"):
        result = system.cli("batches", command, missing, token=org.token)
        assert result.returncode == 1
        assert result.stderr.strip() == f"error: not_found: batch {missing} not found"
