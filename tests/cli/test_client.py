"""The failures every command shares: service down, token missing, refused or not allowed."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.cli_org import Org
from tests.fixtures.cli_system import System
from tests.fixtures.processes import free_port


def test_service_down_is_one_clear_line(system: System, org: Org) -> None:
    down = f"127.0.0.1:{free_port()}"
    for args, env in (
        (("schemas", "list"), "CREDBATCH_TEMPLATES_ADDR"),
        (("batches", "list"), "CREDBATCH_BATCHES_ADDR"),
        (("status", "batches/00000000-0000-0000-0000-000000000000"), "CREDBATCH_BATCHES_ADDR"),
    ):
        result = system.cli(*args, token=org.token, extra_env={env: down})
        assert result.returncode == 3, result.stderr
        assert "cannot reach" in result.stderr and down in result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_upload_to_a_down_service(system: System, org: Org, tmp_path: Path) -> None:
    down = f"127.0.0.1:{free_port()}"
    result = system.cli(
        "upload",
        __file__,
        "--schema",
        org.schema,
        "--medium",
        "email",
        "--uploads-addr",
        down,
        token=org.token,
    )
    assert result.returncode == 3
    assert "cannot reach UploadService" in result.stderr


def test_missing_token(system: System) -> None:
    result = system.cli("schemas", "list")
    assert result.returncode == 4
    assert "no token" in result.stderr


def test_refused_token(system: System) -> None:
    forged = system.token().rsplit(".", 1)[0] + ".c2lnbmF0dXJl"
    for token in ("not-a-jwt", forged):
        result = system.cli("batches", "list", token=token)
        assert result.returncode == 4, result.stderr
        assert "token refused by BatchStatusService" in result.stderr
        assert "Traceback" not in result.stderr


def test_role_not_allowed(system: System, org: Org, tmp_path: Path) -> None:
    observer = system.token(roles=["observer"], tenant=org.tenant, departments=["default"])
    schema = tmp_path / "s.yaml"
    schema.write_text("display_name: X\nattributes:\n  - {name: a, type: string}\n")
    result = system.cli("schemas", "create", str(schema), token=observer)
    assert result.returncode == 4
    assert "not allowed" in result.stderr
