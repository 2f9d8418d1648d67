"""deploy/compose.yaml, the Dockerfile and the collector configuration."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.fixtures.manifests import DEPLOY

COMPONENTS = {
    "templates": "services.templates",
    "uploads": "services.uploads",
    "batch-status": "services.batch_status",
    "public": "services.public",
    "signer": "services.signer",
    "webhooks": "services.webhooks",
    "tenants": "services.tenants",
    "webhooks-dispatcher": "workers.webhooks",
    "relay": "workers.relay",
    "janitor": "workers.janitor",
    "worker": "workers.issuance",
    "migrate": "credbatch.db.migrate",
}


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def test_compose_runs_every_component_from_one_image() -> None:
    services = _compose()["services"]
    for name, module in COMPONENTS.items():
        service = services[name]
        assert service["image"] == "credbatch:dev"
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["command"] == [module]
        env = service["environment"]
        assert env["CREDBATCH_AMQP_URL"].startswith("amqp://")
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4317"
    for infrastructure in ("postgres", "rabbitmq", "otel-collector", "jaeger", "envoy"):
        assert infrastructure in services
    assert services["rabbitmq"]["image"].endswith("-management")


def test_public_reaches_the_signer_which_publishes_no_port() -> None:
    services = _compose()["services"]
    assert "ports" not in services["signer"]
    public = services["public"]["environment"]
    assert public["CREDBATCH_SIGNER_URL"] == "http://signer:50055"
    assert (
        public["CREDBATCH_SIGNER_TOKEN"]
        == services["signer"]["environment"]["CREDBATCH_SIGNER_TOKEN"]
    )


def test_services_wait_for_migrations_and_workers_have_replicas() -> None:
    services = _compose()["services"]
    for name in COMPONENTS.keys() - {"migrate"}:
        after = services[name]["depends_on"]
        assert after["migrate"]["condition"] == "service_completed_successfully", name
    worker = services["worker"]
    assert worker["deploy"]["replicas"] >= 2
    grace = float(worker["environment"]["CREDBATCH_GRACE_SECONDS"])
    assert int(worker["stop_grace_period"].rstrip("s")) > grace


def test_collector_exports_traces_to_the_viewer() -> None:
    config = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())
    pipeline = config["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert "otlp/jaeger" in pipeline["exporters"]
    assert config["exporters"]["otlp/jaeger"]["endpoint"] == "jaeger:4317"


def test_dockerfile_runs_as_a_non_root_user_with_python_m() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and all(not u.startswith(("0", "root")) for u in users)
    assert users[-1].split(":")[0] == "10001"
    assert 'ENTRYPOINT ["python", "-m"]' in text
    # Only what the image needs is copied: the package sources, never tests or .local.
    copied = re.findall(r"^COPY\s+(?!--from)(\S+)", text, re.M)
    assert set(copied) == {"pyproject.toml", "credbatch", "services", "workers"}
    # Dependencies come from the lock with their hashes, and only from there.
    assert "--require-hashes --wheel-dir /wheels -r requirements.lock" in text
    assert "pip install --no-index --find-links /wheels credbatch" in text
