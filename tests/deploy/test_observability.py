"""The dashboard and the alerts query metrics the code exports; every pod is scraped.

The exported names are not listed by hand: every instrument of ``credbatch.metrics`` is
recorded once through the real Prometheus exporter, and the sample names it writes are the
only names a PromQL expression may use. The Prometheus Operator CRDs (PodMonitor,
PrometheusRule) have no schema offline, so they are checked structurally.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from credbatch.metrics import DURATION_BUCKETS, INSTRUMENTS
from tests.fixtures.manifests import DEPLOY, ROOT, THIRD_PARTY, Doc, by_name, of_kind

DASHBOARD = DEPLOY / "observability" / "grafana" / "credbatch.json"
OPERATIONS = ROOT / "docs" / "operations.md"

# PromQL words that are not metric names: functions, aggregations, keywords.
_PROMQL_WORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
    }
)


def _observe(options: CallbackOptions) -> Iterator[Observation]:
    yield Observation(1)


def exported_names() -> set[str]:
    """Sample names the Prometheus exporter writes for every instrument defined."""
    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusMetricReader(registry=registry)])
    meter = provider.get_meter("credbatch")
    for spec in INSTRUMENTS:
        if spec.kind == "counter":
            meter.create_counter(spec.name, unit=spec.unit).add(1)
        elif spec.kind == "up_down_counter":
            meter.create_up_down_counter(spec.name, unit=spec.unit).add(1)
        elif spec.kind == "histogram":
            meter.create_histogram(
                spec.name, unit=spec.unit, explicit_bucket_boundaries_advisory=DURATION_BUCKETS
            ).record(1)
        else:
            meter.create_observable_gauge(spec.name, [_observe], unit=spec.unit)
    text = generate_latest(registry).decode()
    provider.shutdown()
    return {
        sample.name
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name != "target_info"
    }


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values, which may hold anything
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range durations, $__rate_interval
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([A-Za-z_:][\w:]*)\s*(\()?", expr):
        word, call = match.group(1), match.group(2)
        if not call and word.lower() not in _PROMQL_WORDS:
            names.add(word)
    return names


@pytest.fixture(scope="module")
def exported() -> set[str]:
    names = exported_names()
    assert len(names) >= 20
    return names


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _dashboard_exprs() -> list[str]:
    return [
        target["expr"] for panel in _dashboard()["panels"] for target in panel.get("targets", [])
    ]


def _rules(manifests: list[Doc]) -> list[dict[str, Any]]:
    rule = by_name(manifests, "PrometheusRule", "credbatch")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_the_expression_parser_finds_names_and_skips_the_rest() -> None:
    expr = (
        'sum by (rpc_service) (rate(rpc_server_call_duration_seconds_count{rpc_method="X"}'
        "[$__rate_interval])) / on() max(credbatch_outbox_pending) > 0.05"
    )
    assert metric_names(expr) == {
        "rpc_server_call_duration_seconds_count",
        "credbatch_outbox_pending",
    }


def test_the_exporter_names_are_the_documented_ones(exported: set[str]) -> None:
    assert {
        "rpc_server_call_duration_seconds_bucket",
        "credbatch_outbox_oldest_age_seconds",
        "credbatch_jobs_total",
        "credbatch_dead_letter_depth",
        "credbatch_worker_jobs_in_flight",
    } <= exported
    assert "credbatch_does_not_exist_total" not in exported


def test_dashboard_parses_and_queries_only_exported_metrics(exported: set[str]) -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] and dashboard["title"]
    exprs = _dashboard_exprs()
    assert len(exprs) >= 10
    used: set[str] = set()
    for expr in exprs:
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= exported, f"{expr!r} names {names - exported}"
        used |= names
    # Every instrument appears on the dashboard under one of its names.
    families = {re.sub(r"_(bucket|count|sum|total)$", "", n) for n in exported}
    shown = {re.sub(r"_(bucket|count|sum|total)$", "", n) for n in used}
    assert families <= shown, f"not on the dashboard: {families - shown}"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_alerts_query_only_exported_metrics_and_have_a_runbook(
    manifests: list[Doc], exported: set[str]
) -> None:
    rules = _rules(manifests)
    alerts = {rule["alert"] for rule in rules}
    assert {
        "CredbatchOutboxBacklogAging",
        "CredbatchDeadLetters",
        "CredbatchRpcErrorRatioHigh",
        "CredbatchWorkersSaturated",
    } <= alerts
    operations = OPERATIONS.read_text()
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= exported, f"{rule['alert']} names {names - exported}"
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        anchor = rule["alert"].lower()
        assert rule["annotations"]["runbook_url"].endswith(f"operations.md#{anchor}")
        # The runbook has a section of that name.
        assert re.search(rf"^#+ {rule['alert']}\s*$", operations, re.MULTILINE), rule["alert"]


def test_every_pod_is_scraped_on_its_metrics_port(manifests: list[Doc]) -> None:
    config = by_name(manifests, "ConfigMap", "credbatch-config")["data"]
    port = int(config["CREDBATCH_METRICS_PORT"])
    monitor = by_name(manifests, "PodMonitor", "credbatch")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    selector = monitor["spec"]["selector"]["matchLabels"]
    # PgBouncer serves no credbatch metrics (pgbouncer_exporter's, docs/connections.md).
    deployments = [
        d for d in of_kind(manifests, "Deployment") if d["metadata"]["name"] not in THIRD_PARTY
    ]
    assert len(deployments) == 9
    for doc in deployments:
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), doc["metadata"]["name"]
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        assert ports.get(endpoint["port"]) == port, doc["metadata"]["name"]
    for service in of_kind(manifests, "Service"):
        if service["metadata"]["name"] in THIRD_PARTY:
            continue
        names = {p["name"]: p for p in service["spec"]["ports"]}
        assert names["metrics"]["targetPort"] == "metrics", service["metadata"]["name"]
    rule = by_name(manifests, "PrometheusRule", "credbatch")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
