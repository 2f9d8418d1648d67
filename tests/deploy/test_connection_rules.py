"""deploy/observability/connections-rules.yaml: the connection alerts pass ``promtool check
rules`` and their unit tests, and a broken expectation fails (so the tests can fail)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.manifests import DEPLOY

pytestmark = pytest.mark.integration  # promtool runs as a child process

PROMTOOL = Path("/usr/bin/promtool")
RULES = DEPLOY / "observability" / "connections-rules.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    if not os.access(PROMTOOL, os.X_OK):
        pytest.fail(f"{PROMTOOL} is missing: apt-get install prometheus (Debian's promtool)")
    return str(PROMTOOL)


def _split(directory: Path, document: dict[str, Any]) -> Path:
    """The file's groups as rules.yaml and its tests as a promtool test file naming it."""
    (directory / "rules.yaml").write_text(yaml.safe_dump({"groups": document["groups"]}))
    suite = directory / "connections.test.yaml"
    suite.write_text(
        yaml.safe_dump(
            {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": document["tests"]}
        )
    )
    return suite


def _promtool(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(RULES.read_text())
    return document


def test_the_rules_check_and_their_unit_tests_pass(promtool: str, tmp_path: Path) -> None:
    suite = _split(tmp_path, _document())
    checked = _promtool(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool(promtool, "test", "rules", suite.name, cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_fires_in_a_test_and_keeps_the_namespace() -> None:
    document = _document()
    alerts = [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]
    fired = {
        case["alertname"]
        for test in document["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert {rule["alert"] for rule in alerts} == fired
    for rule in alerts:
        assert "by (namespace" in rule["expr"], rule["alert"]
        assert rule["annotations"]["runbook_url"].startswith("docs/connections.md#")


def test_a_wrong_expectation_fails(promtool: str, tmp_path: Path) -> None:
    """Guards the first test: the near-limit alert expected one evaluation early must fail."""
    document = _document()
    case = document["tests"][0]["alert_rule_test"][1]
    assert case["alertname"] == "CredbatchPostgresConnectionsNearLimit" and not case["exp_alerts"]
    case["exp_alerts"] = document["tests"][0]["alert_rule_test"][2]["exp_alerts"]
    suite = _split(tmp_path, document)
    tested = _promtool(promtool, "test", "rules", suite.name, cwd=tmp_path)
    assert tested.returncode != 0


def test_the_runbook_anchors_exist() -> None:
    headings = {
        line.lstrip("#").strip().lower().replace(" ", "-")
        for line in (DEPLOY.parent / "docs" / "connections.md").read_text().splitlines()
        if line.startswith("#")
    }
    for group in _document()["groups"]:
        for rule in group["rules"]:
            anchor = rule["annotations"]["runbook_url"].partition("#")[2]
            assert anchor in headings, anchor
