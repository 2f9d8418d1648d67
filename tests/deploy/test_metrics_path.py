"""One path per signal: metrics scraped by Prometheus, traces pushed by OTLP.

Were the pods also pushing metrics by OTLP to a collector that writes to the same Prometheus,
every counter would arrive twice and every sum and rate would double. The environment each
pod gets is put to the same functions the processes use to decide.
"""

from __future__ import annotations

from typing import Any

from credbatch.metrics import _otlp_wanted
from credbatch.telemetry import build_tracer_provider
from tests.fixtures.manifests import Doc, by_name, of_kind


def _environment(manifests: list[Doc], deployment: Doc) -> dict[str, str]:
    """The pod's environment: the ConfigMap, then the container's own values."""
    config = by_name(manifests, "ConfigMap", "credbatch-config")["data"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env: dict[str, Any] = dict(config)
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
    return env


def test_pods_are_scraped_for_metrics_and_push_only_traces(manifests: list[Doc]) -> None:
    by_name(manifests, "PodMonitor", "credbatch")
    deployments = of_kind(manifests, "Deployment")
    assert deployments
    for deployment in deployments:
        env = _environment(manifests, deployment)
        name = deployment["metadata"]["name"]
        assert int(env["CREDBATCH_METRICS_PORT"]) > 0, name
        assert not _otlp_wanted(env), name
        provider = build_tracer_provider(name, env=env)
        try:
            # A span processor is installed: the OTLP exporter of the traces.
            assert provider._active_span_processor._span_processors, name
        finally:
            provider.shutdown()


def test_the_switch_is_the_one_the_code_reads() -> None:
    """Guards the check above: the same environment with OTLP metrics on is caught."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}
    assert _otlp_wanted(env)
    assert not _otlp_wanted({**env, "OTEL_METRICS_EXPORTER": "none"})
