"""KEDA alone sets the workers' replicas, and reads the broker with a credential of its own.

A ``replicas`` field on a Deployment KEDA scales resets it on every ``kubectl apply`` (to 2,
whatever the backlog); and the workers' AMQP URL can publish to and purge every queue of the
vhost, which a scaler that only counts messages has no use for.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.fixtures.manifests import K8S, Doc, by_name, load_yaml_docs, of_kind, visible_secret_keys


def test_no_scaled_deployment_sets_replicas(manifests: list[Doc]) -> None:
    scaled = of_kind(manifests, "ScaledObject")
    assert scaled
    for doc in scaled:
        target = doc["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment"
        deployment = by_name(manifests, "Deployment", target["name"])
        assert "replicas" not in deployment["spec"], target["name"]


def test_the_rabbitmq_trigger_reads_the_management_api_as_a_monitoring_user(
    manifests: list[Doc],
) -> None:
    scaled = by_name(manifests, "ScaledObject", "credbatch-worker")
    (trigger,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "rabbitmq"]
    assert trigger["metadata"]["protocol"] == "http"
    # Ready jobs only, as the amqp protocol counted them: not the workers' prefetch.
    assert trigger["metadata"]["excludeUnacknowledged"] == "true"
    auth = by_name(manifests, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    (ref,) = auth["spec"]["secretTargetRef"]
    assert ref["key"] == "MONITOR_RABBITMQ_URL"
    base = load_yaml_docs(K8S / "base" / "config.yaml")
    secrets = by_name(base, "Secret", "credbatch-secrets")["stringData"]
    monitor, workers = urlsplit(secrets[ref["key"]]), urlsplit(secrets["CREDBATCH_AMQP_URL"])
    assert monitor.scheme in {"http", "https"}
    assert monitor.hostname == workers.hostname
    # Another user than the workers', in the same vhost.
    assert monitor.username and monitor.username != workers.username
    assert monitor.path == workers.path
    # No process sees KEDA's credentials.
    for doc in of_kind(manifests, "Deployment") + of_kind(manifests, "Job"):
        assert not {k for k in visible_secret_keys(doc) if k.startswith("MONITOR_")}
    # Each overlay that generates the Secret gives KEDA its key too.
    for secret in of_kind(manifests, "Secret"):
        keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
        assert {"MONITOR_RABBITMQ_URL", "MONITOR_DATABASE_URL"} <= keys
