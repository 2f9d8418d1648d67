"""Structural checks of deploy/k8s: base and every overlay, as kubectl renders them."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from credbatch.messaging.topology import WORK_QUEUE
from tests.fixtures.manifests import (
    K8S,
    OVERLAYS,
    ROOT,
    THIRD_PARTY,
    Doc,
    by_name,
    of_kind,
    render,
    resolve_resources,
    settings_sources,
)

GRPC_COMPONENTS = {
    "credbatch-templates": ("services.templates", 50051),
    "credbatch-uploads": ("services.uploads", 50052),
    "credbatch-batch-status": ("services.batch_status", 50053),
    "credbatch-webhooks": ("services.webhooks", 50054),
    "credbatch-tenants": ("services.tenants", 50056),
}
ALL_COMPONENTS = {
    **{name: module for name, (module, _) in GRPC_COMPONENTS.items()},
    "credbatch-public": "services.public",
    "credbatch-bounces": "services.bounces",
    "credbatch-signer": "services.signer",
    "credbatch-relay": "workers.relay",
    "credbatch-worker": "workers.issuance",
    "credbatch-webhooks-dispatcher": "workers.webhooks",
}
# The gRPC servers (each a package with main.py) and the manifests' ports settings.
GRPC_PORT_SETTINGS = {
    "credbatch-templates": "CREDBATCH_TEMPLATES_PORT",
    "credbatch-uploads": "CREDBATCH_UPLOADS_PORT",
    "credbatch-batch-status": "CREDBATCH_BATCHES_PORT",
    "credbatch-webhooks": "CREDBATCH_WEBHOOKS_PORT",
    "credbatch-tenants": "CREDBATCH_TENANTS_PORT",
}


def _pod_spec(doc: Doc) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]["template"]["spec"]
    return spec


def _grace_seconds(docs: list[Doc]) -> float:
    config = by_name(docs, "ConfigMap", "credbatch-config")
    return float(config["data"]["CREDBATCH_GRACE_SECONDS"])


def test_every_component_has_a_deployment_running_its_module(manifests: list[Doc]) -> None:
    deployments = {d["metadata"]["name"]: d for d in of_kind(manifests, "Deployment")}
    assert set(deployments) == set(ALL_COMPONENTS) | THIRD_PARTY
    for name, module in ALL_COMPONENTS.items():
        (container,) = _pod_spec(deployments[name])["containers"]
        assert container["args"] == [module], name
    (job,) = of_kind(manifests, "Job")
    assert job["metadata"]["name"].startswith("credbatch-migrate")
    assert _pod_spec(job)["containers"][0]["args"] == ["credbatch.db.migrate"]


def test_entry_point_modules_exist() -> None:
    for module in ALL_COMPONENTS.values():
        # `python -m package` runs the package's __main__ module.
        assert importlib.util.find_spec(f"{module}.__main__") is not None, module
    assert importlib.util.find_spec("credbatch.db.migrate") is not None


def test_pods_run_as_non_root_with_read_only_root_and_no_capabilities(
    manifests: list[Doc],
) -> None:
    workloads = of_kind(manifests, "Deployment") + of_kind(manifests, "Job")
    assert workloads
    for doc in workloads:
        pod = _pod_spec(doc)
        assert pod["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        assert pod["securityContext"]["runAsUser"] != 0
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            # A read-only root still needs somewhere to write temporary files.
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts  # noqa: S108 - the mount path, not a file we create
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), (doc["metadata"]["name"], kind)


def test_grpc_services_use_native_grpc_health_probes(manifests: list[Doc]) -> None:
    config = by_name(manifests, "ConfigMap", "credbatch-config")["data"]
    for name, (_, port) in GRPC_COMPONENTS.items():
        (container,) = _pod_spec(by_name(manifests, "Deployment", name))["containers"]
        assert container["ports"][0] == {"name": "grpc", "containerPort": port}
        assert int(config[GRPC_PORT_SETTINGS[name]]) == port
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": port}, (name, probe)
        service = by_name(manifests, "Service", name)
        assert service["spec"]["ports"][0]["targetPort"] == "grpc"
        assert service["spec"]["ports"][0]["appProtocol"] == "grpc"


# Processes without a gRPC API that serve grpc.health.v1 on CREDBATCH_HEALTH_PORT.
HEALTH_PORT_COMPONENTS = ("credbatch-relay", "credbatch-worker", "credbatch-webhooks-dispatcher")


def test_relay_workers_and_dispatchers_are_probed_on_the_health_port(manifests: list[Doc]) -> None:
    port = int(by_name(manifests, "ConfigMap", "credbatch-config")["data"]["CREDBATCH_HEALTH_PORT"])
    for name in HEALTH_PORT_COMPONENTS:
        (container,) = _pod_spec(by_name(manifests, "Deployment", name))["containers"]
        assert {"name": "health", "containerPort": port} in container["ports"], name
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": port}, (name, probe)


def test_every_process_serving_health_on_the_health_port_is_probed() -> None:
    """A process module that serves health on CREDBATCH_HEALTH_PORT is in the list above."""
    serving = {
        f"workers.{path.parent.name}"
        for path in (ROOT / "workers").glob("*/main.py")
        if "serving_health(" in path.read_text()
    }
    assert serving == {ALL_COMPONENTS[name] for name in HEALTH_PORT_COMPONENTS}


def test_every_grpc_server_of_the_code_is_deployed() -> None:
    """A package under services/ that serves gRPC (it defines service_specs) is in the list
    above, so it gets a Deployment, a Service and native gRPC probes."""
    servers = {
        f"services.{path.parent.name}"
        for path in (ROOT / "services").glob("*/main.py")
        if "def service_specs(" in path.read_text()
    }
    assert servers == {module for module, _ in GRPC_COMPONENTS.values()}


def test_termination_grace_exceeds_the_drain_time(manifests: list[Doc]) -> None:
    grace = _grace_seconds(manifests)
    for doc in of_kind(manifests, "Deployment"):
        period = _pod_spec(doc)["terminationGracePeriodSeconds"]
        assert period > grace, doc["metadata"]["name"]
    # Workers finish and ack prefetched jobs: leave them clearly more than the drain time.
    worker = _pod_spec(by_name(manifests, "Deployment", "credbatch-worker"))
    assert worker["terminationGracePeriodSeconds"] >= 2 * grace


def test_every_deployment_has_a_disruption_budget_and_selectors_match(
    manifests: list[Doc],
) -> None:
    budgets = {d["metadata"]["name"]: d for d in of_kind(manifests, "PodDisruptionBudget")}
    for doc in of_kind(manifests, "Deployment"):
        name = doc["metadata"]["name"]
        labels = doc["spec"]["template"]["metadata"]["labels"]
        selector = doc["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items(), name
        budget = budgets[name]["spec"]
        assert budget["selector"]["matchLabels"].items() <= labels.items()
        assert ("minAvailable" in budget) != ("maxUnavailable" in budget)
    for service in of_kind(manifests, "Service"):
        target = by_name(manifests, "Deployment", service["metadata"]["name"])
        labels = target["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()


def test_keda_scales_workers_on_the_issuance_queue(manifests: list[Doc]) -> None:
    scaled = by_name(manifests, "ScaledObject", "credbatch-worker")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == "credbatch-worker"
    by_name(manifests, "Deployment", scaled["spec"]["scaleTargetRef"]["name"])
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
    (trigger,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "rabbitmq"]
    assert trigger["metadata"]["queueName"] == WORK_QUEUE
    assert trigger["metadata"]["mode"] == "QueueLength"
    assert int(trigger["metadata"]["value"]) > 0
    auth = by_name(manifests, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    (ref,) = auth["spec"]["secretTargetRef"]
    assert ref["parameter"] == "host"
    assert ref["name"] == "credbatch-secrets"
    # KEDA's own read-only credential (test_keda_scaling.py), never the workers' AMQP URL.
    assert ref["key"] == "MONITOR_RABBITMQ_URL"


def test_configuration_names_are_ones_the_settings_read(manifests: list[Doc]) -> None:
    known = set(re.findall(r"CREDBATCH_[A-Z_]+", settings_sources()))
    config = by_name(manifests, "ConfigMap", "credbatch-config")
    keys = set(config["data"])
    for secret in of_kind(manifests, "Secret"):
        keys |= set(secret.get("stringData", {})) | set(secret.get("data", {}))
    unknown = {k for k in keys if k.startswith("CREDBATCH_")} - known
    assert not unknown


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_set_namespace_and_image(overlay: str) -> None:
    docs = render(overlay)
    kustomization = yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml").read_text())
    assert kustomization["namespace"].startswith("credbatch")
    # The base and every overlay patch name resources that exist.
    names = {(d["kind"], d["metadata"]["name"]) for d in resolve_resources(K8S / "base")}
    for patch in kustomization.get("patches", []):
        target = patch["target"]
        assert (target["kind"], target["name"]) in names
    images = {
        c["image"]
        for d in of_kind(docs, "Deployment")
        if d["metadata"]["name"] not in THIRD_PARTY
        for c in _pod_spec(d)["containers"]
    }
    assert len(images) == 1 and ":" in next(iter(images))


def test_production_keeps_secrets_out_of_git() -> None:
    docs = render("prod")
    if docs == resolve_resources(K8S / "overlays" / "prod"):
        pytest.skip("patches are applied by kubectl kustomize only")
    assert not of_kind(docs, "Secret")
    config = by_name(docs, "ConfigMap", "credbatch-config")
    assert config["data"]["CREDBATCH_MODE"] == "production"


def test_manifests_match_the_kubernetes_schemas(manifests: list[Doc]) -> None:
    validate = kubernetes_validate
    checked = 0
    for doc in manifests:
        if doc["apiVersion"].startswith(("keda.sh/", "monitoring.coreos.com/")):
            continue  # a CRD: checked structurally (here and in test_observability.py)
        validate.validate(doc, "1.32", strict=True)
        checked += 1
    assert checked >= 15


def test_the_schema_validator_rejects_a_broken_manifest() -> None:
    """Guards the check above: a probe with a misspelt field must fail validation."""
    validate = kubernetes_validate
    doc = yaml.safe_load((K8S / "base" / "templates.yaml").read_text().split("---")[1])
    probe = doc["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    probe["grpc"]["prot"] = probe["grpc"].pop("port")
    with pytest.raises(validate.ValidationError):
        validate.validate(doc, "1.32", strict=True)


def test_every_yaml_file_under_deploy_parses() -> None:
    files = sorted((ROOT / "deploy").rglob("*.yaml"))
    assert len(files) >= 15
    for path in files:
        assert list(yaml.safe_load_all(Path(path).read_text())), path
