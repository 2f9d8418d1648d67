"""Least privilege in deploy/: each workload sees only the secret keys it uses.

Only the migration Job gets the owner's database URL, only the issuance workers the KEK, and
the internet-facing public component gets nothing but the application role's URL.
"""

from __future__ import annotations

from typing import Any

import yaml

from tests.fixtures.manifests import DEPLOY, Doc, of_kind

OWNER_URL = "CREDBATCH_DATABASE_URL"
KEK = "CREDBATCH_KEK"
EXPECTED = {
    "credbatch-migrate": {OWNER_URL},
    "credbatch-templates": {"CREDBATCH_APP_DATABASE_URL", "CREDBATCH_JWT_SECRET"},
    "credbatch-uploads": {"CREDBATCH_APP_DATABASE_URL", "CREDBATCH_JWT_SECRET"},
    "credbatch-batch-status": {"CREDBATCH_APP_DATABASE_URL", "CREDBATCH_JWT_SECRET"},
    "credbatch-public": {"CREDBATCH_APP_DATABASE_URL"},
    "credbatch-relay": {"CREDBATCH_APP_DATABASE_URL", "CREDBATCH_AMQP_URL"},
    "credbatch-worker": {
        "CREDBATCH_APP_DATABASE_URL",
        "CREDBATCH_AMQP_URL",
        KEK,
        "CREDBATCH_SMS_ACCOUNT",
        "CREDBATCH_SMS_TOKEN",
        "CREDBATCH_SMTP_USERNAME",
        "CREDBATCH_SMTP_PASSWORD",
    },
}


def visible_secret_keys(workload: Doc) -> set[str]:
    """Secret keys the workload's containers can read; a whole Secret counts as '*'."""
    pod: dict[str, Any] = workload["spec"]["template"]["spec"]
    seen: set[str] = set()
    for container in pod["containers"] + pod.get("initContainers", []):
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                seen.add(f"*{source['secretRef']['name']}")
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref is not None:
                assert ref["key"] == variable["name"], variable
                seen.add(ref["key"])
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            seen.add(f"*{volume['secret']['secretName']}")
    return seen


def test_each_workload_sees_exactly_the_secret_keys_it_needs(manifests: list[Doc]) -> None:
    workloads = of_kind(manifests, "Deployment") + of_kind(manifests, "Job")
    seen = {doc["metadata"]["name"]: visible_secret_keys(doc) for doc in workloads}
    assert seen == EXPECTED


def test_only_the_migration_job_sees_the_owner_url_and_public_sees_no_key(
    manifests: list[Doc],
) -> None:
    workloads = of_kind(manifests, "Deployment") + of_kind(manifests, "Job")
    owners = {d["metadata"]["name"] for d in workloads if OWNER_URL in visible_secret_keys(d)}
    assert owners == {"credbatch-migrate"}
    (migrate,) = of_kind(manifests, "Job")
    assert migrate["metadata"]["name"] == "credbatch-migrate"
    holders = {d["metadata"]["name"] for d in workloads if KEK in visible_secret_keys(d)}
    assert holders == {"credbatch-worker"}
    (public,) = [d for d in workloads if d["metadata"]["name"] == "credbatch-public"]
    assert visible_secret_keys(public) == {"CREDBATCH_APP_DATABASE_URL"}


def test_compose_gives_the_owner_url_to_migrate_and_the_kek_to_workers_only() -> None:
    services: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    env = {name: set(s.get("environment") or {}) for name, s in services.items()}
    assert {name for name, keys in env.items() if OWNER_URL in keys} == {"migrate"}
    assert {name for name, keys in env.items() if KEK in keys} == {"worker"}
    assert OWNER_URL not in env["public"] and KEK not in env["public"]
