"""The dashboard and the alerts query metrics the code exports; every pod is scraped.

The exported names are not listed by hand: every instrument of ``credbatch.metrics`` is
recorded once through the real Prometheus exporter, and the sample names it writes are the
only names a PromQL expression may use, besides the rules' own recordings and the series of
Prometheus (``up``) and kube-state-metrics. That the processes really serve each name used,
with the labels matched on, is checked by each process's metrics test on the real process
(``tests.fixtures.observed.assert_serves_what_is_used``); here, that every name used belongs
to one of those processes. The Prometheus Operator CRDs (PodMonitor, PrometheusRule) have no
schema offline, so they are checked structurally; the rules themselves run in promtool
(tests/deploy/test_alerts.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from credbatch.metrics import INSTRUMENTS
from tests.fixtures.manifests import ROOT, THIRD_PARTY, Doc, by_name, of_kind
from tests.fixtures.observed import (
    EXTERNAL,
    assert_serves_what_is_used,
    dashboard,
    dashboard_exprs,
    metric_names,
    recorded,
    role_of,
    selectors,
    used_selectors,
)

OPERATIONS = ROOT / "docs" / "operations.md"
NAMESPACE = ("namespace", "=", "$namespace")


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
                spec.name, unit=spec.unit, explicit_bucket_boundaries_advisory=spec.buckets
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


@pytest.fixture(scope="module")
def exported() -> set[str]:
    names = exported_names()
    assert len(names) >= 20
    return names


def _rules(manifests: list[Doc]) -> list[dict[str, Any]]:
    rule = by_name(manifests, "PrometheusRule", "credbatch")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_the_expression_parser_finds_names_and_skips_the_rest() -> None:
    expr = (
        'sum by (rpc_service) (rate(rpc_server_call_duration_seconds_count{rpc_method="X",'
        ' namespace="$namespace"}[$__rate_interval])) / on() max(credbatch_outbox_pending) > 0.05'
        " or namespace:credbatch_rpc_errors:ratio_rate5m > 14.4 * 0.001"
    )
    assert metric_names(expr) == {
        "rpc_server_call_duration_seconds_count",
        "credbatch_outbox_pending",
        "namespace:credbatch_rpc_errors:ratio_rate5m",
    }
    assert dict(selectors(expr))["rpc_server_call_duration_seconds_count"] == [
        ("rpc_method", "=", "X"),
        NAMESPACE,
    ]
    # A label value that looks like a name is no name.
    assert metric_names('up{container="relay"}') == {"up"}


def test_the_exporter_names_are_the_documented_ones(exported: set[str]) -> None:
    assert {
        "rpc_server_call_duration_seconds_bucket",
        "credbatch_outbox_oldest_age_seconds",
        "credbatch_jobs_total",
        "credbatch_dead_letter_depth",
        "credbatch_dead_letters_total",
        "credbatch_worker_slots_busy",
        "credbatch_worker_slots_limit",
        "credbatch_record_upload_to_invited_seconds_bucket",
    } <= exported
    assert "credbatch_does_not_exist_total" not in exported


def test_every_name_used_is_exported_and_served_by_a_known_process(exported: set[str]) -> None:
    used = {name for name, _ in used_selectors()}
    assert used <= exported, f"not exported: {used - exported}"
    # Each belongs to one process role whose real-process test checks it is served.
    assert not {name for name in used if role_of(name) is None}
    assert {role_of(name) for name in used} == {
        "relay",
        "worker",
        "webhooks-dispatcher",
        "janitor",
        "grpc-service",
        "uploads",
        "http-service",
        "bounces",
        "signer",
    }


def test_a_process_missing_a_used_name_or_label_value_fails_the_check() -> None:
    lead = "credbatch_record_upload_to_invited_seconds"
    served = [
        Sample(f"{lead}_bucket", {"le": "600.0"}, 5),
        Sample(f"{lead}_bucket", {"le": "3600.0"}, 5),
        *(
            Sample(name, {}, 0)
            for name, _ in used_selectors()
            if role_of(name) == "worker" and not name.startswith(f"{lead}_bucket")
        ),
    ]
    assert_serves_what_is_used(served, "worker")
    with pytest.raises(AssertionError, match="credbatch_worker_slots_busy"):
        assert_serves_what_is_used(
            [s for s in served if s.name != "credbatch_worker_slots_busy"], "worker"
        )
    # The SLO's bucket boundary, as the exporter writes it, must be among the buckets served.
    with pytest.raises(AssertionError, match=r"le=.3600\.0"):
        assert_serves_what_is_used([s for s in served if s.labels.get("le") != "3600.0"], "worker")


def test_dashboard_parses_and_queries_only_exported_metrics(exported: set[str]) -> None:
    board = dashboard()
    assert board["uid"] and board["title"]
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    allowed = exported | recorded() | EXTERNAL
    used: set[str] = set()
    for expr in exprs:
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= allowed, f"{expr!r} names {names - allowed}"
        used |= names
    # Every instrument appears on the dashboard under one of its names.
    families = {re.sub(r"_(bucket|count|sum|total)$", "", n) for n in exported}
    shown = {re.sub(r"_(bucket|count|sum|total)$", "", n) for n in used}
    assert families <= shown, f"not on the dashboard: {families - shown}"
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))


def test_every_dashboard_query_is_scoped_to_the_namespace_variable() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    namespace = variables["namespace"]
    assert namespace["type"] == "query"
    assert namespace["datasource"]["uid"] == "${datasource}"
    query = namespace["query"]["query"]
    assert re.fullmatch(r"label_values\((.+), namespace\)", query), query
    for expr in dashboard_exprs():
        for name, matchers in selectors(expr):
            assert NAMESPACE in matchers, f"{name} in {expr!r} is not scoped to $namespace"


def test_alerts_query_only_exported_metrics_and_have_a_runbook(
    manifests: list[Doc], exported: set[str]
) -> None:
    rules = _rules(manifests)
    alerts = {rule["alert"] for rule in rules if "alert" in rule}
    assert {
        "CredbatchOutboxBacklogAging",
        "CredbatchRelayDown",
        "CredbatchWorkersDown",
        "CredbatchDeadLetters",
        "CredbatchRpcErrorRatioHigh",
        "CredbatchHttpServerErrors",
        "CredbatchWorkersSaturated",
        "CredbatchWorkersAtMaxReplicas",
        "CredbatchWebhookBacklogAging",
        "CredbatchJanitorDown",
        "CredbatchRpcAvailabilityBudgetBurn",
        "CredbatchUploadToInvitedBudgetBurn",
    } <= alerts
    records = {rule["record"] for rule in rules if "record" in rule}
    allowed = exported | records | EXTERNAL
    operations = OPERATIONS.read_text()
    for rule in rules:
        names = metric_names(rule["expr"])
        label = rule.get("alert") or rule["record"]
        assert names, label
        assert names <= allowed, f"{label} names {names - allowed}"
        if "record" in rule:
            assert re.fullmatch(r"namespace:credbatch_\w+:ratio_rate\d+[mh]", label), label
            continue
        assert re.fullmatch(r"\d+[smh]", rule["for"]), label
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        anchor = label.lower()
        assert rule["annotations"]["runbook_url"].endswith(f"operations.md#{anchor}")
        # The runbook has a section of that name.
        assert re.search(rf"^#+ {label}\s*$", operations, re.MULTILINE), label


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
    assert len(deployments) == 12
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
