"""`credbatch batches list`: the history, with each role's visibility."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Org, System, batch_csv


def test_list_follows_role_visibility(system: System, org: Org, tmp_path: Path) -> None:
    issuer = system.token(roles=["issuer"], tenant=org.tenant, sub="issuer-a", departments=["hr"])
    other = system.token(roles=["issuer"], tenant=org.tenant, sub="issuer-b", departments=["hr"])
    path = tmp_path / "mine.csv"
    path.write_text(batch_csv(2))
    uploaded = system.cli(
        "upload",
        str(path),
        "--schema",
        org.schema,
        "--medium",
        "email",
        "--certificate-template",
        org.certificate_template,
        token=issuer,
    )
    assert uploaded.returncode == 0, uploaded.stderr
    name = uploaded.stdout.strip()
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
