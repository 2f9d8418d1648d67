"""The PodMonitor and PrometheusRule carry the labels the operator's Prometheus selects.

The Prometheus Operator picks them up by label (podMonitorSelector, ruleSelector); without
the right one the scrape and the alerts silently do not exist. Production sets
kube-prometheus-stack's default; an SRE's own overlay sets another with one patch.
"""

from __future__ import annotations

from pathlib import Path

from tests.deploy.layered import documented_patches, render_over
from tests.fixtures.manifests import Doc, by_name, of_kind, render

MONITORING_KINDS = ("PodMonitor", "PrometheusRule")


def _labels(docs: list[Doc], kind: str) -> dict[str, str]:
    labels: dict[str, str] = by_name(docs, kind, "credbatch")["metadata"]["labels"]
    return labels


def test_production_labels_them_for_kube_prometheus_stack() -> None:
    docs = render("prod")
    for kind in MONITORING_KINDS:
        assert _labels(docs, kind)["release"] == "kube-prometheus-stack", kind


def test_an_overlay_sets_the_operators_selector_in_one_patch(tmp_path: Path) -> None:
    # The patch docs/deploy.md shows.
    patches = documented_patches("group: monitoring.coreos.com")
    docs = render_over(tmp_path, "prod", {"patches": patches})
    for kind in MONITORING_KINDS:
        assert _labels(docs, kind)["prometheus"] == "team-payments", kind
    # Nothing else got the label (a Deployment's would leak into the PodMonitor's selector).
    others = [d for d in docs if d["kind"] not in MONITORING_KINDS]
    assert all("prometheus" not in d["metadata"].get("labels", {}) for d in others)
    assert of_kind(docs, "Deployment")
