"""The alert and recording rules are tested like code: ``promtool check rules`` and ``promtool
test rules`` on the PrometheusRule's groups, with the unit tests of deploy/observability/tests/.

The rules have one source, the PrometheusRule in deploy/k8s/base/monitoring.yaml: its
``spec.groups`` is exactly a Prometheus rules file, so each test writes it out as ``rules.yaml``
beside copies of the unit tests (which name that file) and runs Debian's promtool on them
(``make promtool`` installs it). The same groups must come out of every overlay's render.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.manifests import DEPLOY, K8S, Doc, by_name, resolve_resources

pytestmark = pytest.mark.integration  # promtool runs as a child process

PROMTOOL = Path("/usr/bin/promtool")
UNIT_TESTS = DEPLOY / "observability" / "tests"


@pytest.fixture(scope="module")
def promtool() -> str:
    if not os.access(PROMTOOL, os.X_OK):
        pytest.fail(f"{PROMTOOL} is missing: run `make promtool` (apt-get install prometheus)")
    return str(PROMTOOL)


def rule_groups(manifests: list[Doc]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = by_name(manifests, "PrometheusRule", "credbatch")["spec"][
        "groups"
    ]
    return groups


def base_groups() -> list[dict[str, Any]]:
    return rule_groups(resolve_resources(K8S / "base"))


def unit_tests() -> list[Path]:
    files = sorted(UNIT_TESTS.glob("*.test.yaml"))
    assert files, f"no promtool unit tests in {UNIT_TESTS}"
    return files


def write_suite(directory: Path, groups: list[dict[str, Any]]) -> Path:
    """``groups`` as ``rules.yaml`` beside copies of every unit test; the rules file's path."""
    rules = directory / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    for test in unit_tests():
        shutil.copy(test, directory / test.name)
    return rules


def run(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def _alerts(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _recorded(groups: list[dict[str, Any]]) -> set[str]:
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def _loaded_tests() -> list[dict[str, Any]]:
    return [case for path in unit_tests() for case in yaml.safe_load(path.read_text())["tests"]]


def test_promtool_checks_the_rules(promtool: str, tmp_path: Path) -> None:
    rules = write_suite(tmp_path, base_groups())
    result = run(promtool, "check", "rules", rules.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_pass(promtool: str, tmp_path: Path) -> None:
    write_suite(tmp_path, base_groups())
    names = [test.name for test in unit_tests()]
    result = run(promtool, "test", "rules", *names, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(names), result.stdout


def test_promtool_fails_an_alert_that_does_not_fire(promtool: str, tmp_path: Path) -> None:
    """The unit tests can fail: with one alert's expression never true, promtool says so."""
    groups = base_groups()
    victim = next(r for r in _alerts(groups) if r["alert"] == "CredbatchWorkersSaturated")
    victim["expr"] = "vector(0) > 1"
    write_suite(tmp_path, groups)
    result = run(promtool, "test", "rules", "workers.test.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert "alertname: CredbatchWorkersSaturated" in result.stdout + result.stderr


def test_every_alert_fires_in_a_unit_test_with_its_namespace() -> None:
    groups = base_groups()
    alerts = {rule["alert"] for rule in _alerts(groups)}
    fired: dict[str, list[dict[str, Any]]] = {}
    for case in _loaded_tests():
        for check in case.get("alert_rule_test", []):
            fired.setdefault(check["alertname"], []).extend(check.get("exp_alerts") or [])
    assert set(fired) <= alerts, f"tests of unknown alerts: {set(fired) - alerts}"
    silent = {name for name in alerts if not fired.get(name)}
    assert not silent, f"alerts no unit test makes fire: {sorted(silent)}"
    for name, expected in fired.items():
        for alert in expected:
            # Rules aggregate by namespace: two installations in one Prometheus alert apart.
            assert alert["exp_labels"].get("namespace"), f"{name} fires without a namespace"


def test_every_recording_rule_is_tested_and_keeps_the_namespace() -> None:
    groups = base_groups()
    recorded = _recorded(groups)
    assert recorded, "no recording rules"
    read = " ".join(
        check["expr"] for case in _loaded_tests() for check in case.get("promql_expr_test", [])
    )
    for rule in (r for group in groups for r in group["rules"] if "record" in r):
        assert re.search(r"\bby \(namespace\)", rule["expr"]), rule["record"]
    # Every SLO's recorded windows feed its alert; each SLO has a value checked directly.
    assert "namespace:credbatch_rpc_errors:" in read
    assert "namespace:credbatch_invited_late:" in read


def test_rules_aggregate_by_namespace() -> None:
    """No aggregation drops ``namespace``: every ``by (...)`` names it, no ``without``."""
    for rule in (r for group in base_groups() for r in group["rules"]):
        expr = rule["expr"]
        assert " without " not in expr, rule
        for labels in re.findall(r"\bby \(([^)]*)\)", expr):
            assert "namespace" in [label.strip() for label in labels.split(",")], (rule, labels)
        assert not re.search(r"\b(sum|max|min|avg|count)\s*\(", expr), (
            f"{rule.get('alert') or rule.get('record')}: an aggregation without by (namespace)"
        )


def test_slo_alerts_use_the_workbook_windows_and_burn_rates() -> None:
    """1h and 5m over 14.4 times the budget, or 6h and 30m over 6 times (both windows each)."""
    budgets = {"CredbatchRpcAvailabilityBudgetBurn": "0.001"}
    budgets["CredbatchUploadToInvitedBudgetBurn"] = "0.01"
    rules = {r["alert"]: r for r in _alerts(base_groups())}
    for name, budget in budgets.items():
        expr = " ".join(rules[name]["expr"].split())
        pairs = re.findall(r":ratio_rate(\w+) > ([\d.]+) \* ([\d.]+)", expr)
        assert sorted(pairs) == sorted(
            [
                ("1h", "14.4", budget),
                ("5m", "14.4", budget),
                ("6h", "6", budget),
                ("30m", "6", budget),
            ]
        ), (name, pairs)


def test_every_render_holds_the_same_groups(manifests: list[Doc]) -> None:
    assert rule_groups(manifests) == base_groups()
