"""Restoring from a backup (docs/operations.md, "Restoring from a backup"): `ops.database
backup` of a running system, `ops.database restore` into a fresh database, every process
restarted on it; the backup's batches and signing keys are there and issuance goes on."""

from __future__ import annotations

import functools
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from credbatch.db.migrate import database_name
from tests.fixtures.cli_org import create_org, row, upload_rows
from tests.fixtures.cli_system import System, _grpc_serving, _wait_until, running_system
from tests.fixtures.database import drop_database, with_database

ROOT = Path(__file__).resolve().parents[2]


def _ops(system: System, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.database", *args],
        env=system.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _watch(system: System, name: str, token: str) -> str:
    done = system.cli("status", name, "--watch", token=token, timeout=180)
    assert done.returncode == 0, done.stderr + system.log_tail("worker")
    return done.stdout


async def _restart_on(system: System, database: str) -> None:
    """Every process pointed at ``database`` and started again, as an operator would."""
    for key in (
        "CREDBATCH_DATABASE_URL",
        "CREDBATCH_APP_DATABASE_URL",
        "CREDBATCH_RELAY_DATABASE_URL",
    ):
        system.env[key] = with_database(system.env[key], database)
    for name, args in list(system.commands.items()):
        system.start(name, *args)
    for name in ("templates", "uploads", "batches"):
        serving = functools.partial(_grpc_serving, system.ports[name])
        system.wait_ready(name, await _wait_until(serving))


async def _kids(owner_url: str, tenant: uuid.UUID) -> list[str]:
    conn = await asyncpg.connect(owner_url)
    try:
        rows = await conn.fetch(
            "SELECT kid FROM signing_keys WHERE tenant_id = $1 ORDER BY kid", tenant
        )
        return [r["kid"] for r in rows]
    finally:
        await conn.close()


@pytest.mark.integration
async def test_backup_restore_into_a_fresh_database_and_restart(tmp_path: Path) -> None:
    (tmp_path / "system").mkdir()
    async with running_system(tmp_path / "system") as system:
        org = create_org(system, tmp_path)
        before = upload_rows(system, org, tmp_path / "before.csv", 3)
        assert row(_watch(system, before, org.token), "invited") == "3"
        old_url = system.env["CREDBATCH_DATABASE_URL"]
        kids = await _kids(old_url, org.tenant)
        assert kids

        dump = tmp_path / "credbatch.dump"
        backed_up = _ops(system, "backup", str(dump))
        assert backed_up.returncode == 0, backed_up.stderr
        assert _ops(system, "backup", str(dump)).returncode == 1  # never overwrites
        after = upload_rows(system, org, tmp_path / "after.csv", 2)
        _watch(system, after, org.token)

        restored = f"{database_name(old_url)}_restored"
        try:
            done = _ops(system, "restore", str(dump), "--database", restored)
            assert done.returncode == 0, done.stderr
            assert f"/{restored}" in done.stdout
            again = _ops(system, "restore", str(dump), "--database", restored)
            assert again.returncode == 1
            assert "exists already; restore into a new name" in again.stderr

            system.stop()
            # Jobs on the broker name records of the old database: purged, as the runbook says.
            vhost = system.env["CREDBATCH_AMQP_URL"].rsplit("/", 1)[1]
            purge = ["rabbitmqctl", "-q", "-p", vhost, "purge_queue", "credbatch.issuance.jobs"]
            subprocess.run(purge, check=True, capture_output=True, timeout=60)
            await _restart_on(system, restored)
            summary = _watch(system, before, org.token)
            assert (row(summary, "state"), row(summary, "invited")) == ("COMPLETED", "3")
            # What happened after the backup is gone with the old database.
            missing = system.cli("status", after, token=org.token)
            assert missing.returncode != 0
            assert "not_found" in missing.stderr
            # The restored keys sign under the same KEK: a new batch is issued and invited.
            fresh = upload_rows(system, org, tmp_path / "fresh.csv", 2)
            summary = _watch(system, fresh, org.token)
            assert (row(summary, "state"), row(summary, "invited")) == ("COMPLETED", "2")
            assert await _kids(with_database(old_url, restored), org.tenant) == kids
        finally:
            system.stop()
            await drop_database(with_database(old_url, restored))


def test_restore_refuses_a_missing_file_and_an_unset_url(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    unset = subprocess.run(
        [sys.executable, "-m", "ops.database", "restore", "x.dump", "--database", "y"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert unset.returncode == 2 and "CREDBATCH_DATABASE_URL" in unset.stderr
    env["CREDBATCH_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:5432/credbatch"
    missing = subprocess.run(
        [sys.executable, "-m", "ops.database", "restore", str(tmp_path / "no"), "--database", "y"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1 and "is not a file" in missing.stderr
