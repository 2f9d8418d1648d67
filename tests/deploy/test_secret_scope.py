"""Least privilege in deploy/: each workload sees only the secret keys it uses.

Only the migration Job gets the owner's database URL; only the issuance workers and the
signer the KEK; only the relay and the webhook dispatcher their own roles' URLs (the roles
allowed to run the cross-tenant outbox functions and the webhook claim); and the
internet-facing public component gets nothing but the application role's URL and the token it
presents to the signer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import yaml

from credbatch.config import RELAY_ROLE, WEBHOOKS_ROLE
from tests.fixtures.manifests import DEPLOY, Doc, of_kind, visible_secret_keys

OWNER_URL = "CREDBATCH_DATABASE_URL"
RELAY_URL = "CREDBATCH_RELAY_DATABASE_URL"
WEBHOOKS_URL = "CREDBATCH_WEBHOOKS_DATABASE_URL"
APP_URL = "CREDBATCH_APP_DATABASE_URL"
KEK = "CREDBATCH_KEK"
SIGNER_TOKEN = "CREDBATCH_SIGNER_TOKEN"
EXPECTED = {
    "credbatch-migrate": {OWNER_URL},
    "credbatch-templates": {"CREDBATCH_APP_DATABASE_URL", "CREDBATCH_JWT_SECRET"},
    "credbatch-uploads": {"CREDBATCH_APP_DATABASE_URL", "CREDBATCH_JWT_SECRET"},
    "credbatch-batch-status": {"CREDBATCH_APP_DATABASE_URL", "CREDBATCH_JWT_SECRET"},
    "credbatch-webhooks": {"CREDBATCH_APP_DATABASE_URL", "CREDBATCH_JWT_SECRET"},
    "credbatch-public": {APP_URL, SIGNER_TOKEN},
    "credbatch-signer": {APP_URL, KEK, SIGNER_TOKEN},
    # Its own role claims and sweeps; dead letters are recorded as the application role.
    "credbatch-relay": {RELAY_URL, APP_URL, "CREDBATCH_AMQP_URL"},
    # Its own role claims; each delivery is read and recorded as the application role.
    "credbatch-webhooks-dispatcher": {WEBHOOKS_URL, APP_URL},
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


def test_each_workload_sees_exactly_the_secret_keys_it_needs(manifests: list[Doc]) -> None:
    workloads = of_kind(manifests, "Deployment") + of_kind(manifests, "Job")
    seen = {doc["metadata"]["name"]: visible_secret_keys(doc) for doc in workloads}
    assert seen == EXPECTED


def test_only_the_migration_job_sees_the_owner_url_and_public_sees_no_key(
    manifests: list[Doc],
) -> None:
    def holders_of(key: str) -> set[str]:
        return {d["metadata"]["name"] for d in workloads if key in visible_secret_keys(d)}

    workloads = of_kind(manifests, "Deployment") + of_kind(manifests, "Job")
    owners = {d["metadata"]["name"] for d in workloads if OWNER_URL in visible_secret_keys(d)}
    assert owners == {"credbatch-migrate"}
    (migrate,) = of_kind(manifests, "Job")
    assert migrate["metadata"]["name"] == "credbatch-migrate"
    assert holders_of(KEK) == {"credbatch-worker", "credbatch-signer"}
    (public,) = [d for d in workloads if d["metadata"]["name"] == "credbatch-public"]
    assert visible_secret_keys(public) == {APP_URL, SIGNER_TOKEN}
    assert holders_of(SIGNER_TOKEN) == {"credbatch-public", "credbatch-signer"}
    assert holders_of(RELAY_URL) == {"credbatch-relay"}
    assert holders_of(WEBHOOKS_URL) == {"credbatch-webhooks-dispatcher"}


def test_the_role_urls_name_their_roles(manifests: list[Doc]) -> None:
    for secret in of_kind(manifests, "Secret"):
        values = {**secret.get("stringData", {})}
        for key, role in ((RELAY_URL, RELAY_ROLE), (WEBHOOKS_URL, WEBHOOKS_ROLE)):
            if key in values:
                assert urlsplit(values[key]).username == role, key


def test_compose_gives_the_owner_url_to_migrate_and_the_kek_to_workers_only() -> None:
    services: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    env = {name: set(s.get("environment") or {}) for name, s in services.items()}
    assert {name for name, keys in env.items() if OWNER_URL in keys} == {"migrate"}
    assert {name for name, keys in env.items() if KEK in keys} == {"worker", "signer"}
    assert OWNER_URL not in env["public"] and KEK not in env["public"]
    assert {name for name, keys in env.items() if SIGNER_TOKEN in keys} == {"public", "signer"}
    assert {name for name, keys in env.items() if RELAY_URL in keys} == {"relay"}
    relay_url = services["relay"]["environment"][RELAY_URL]
    assert urlsplit(relay_url).username == RELAY_ROLE
    assert {name for name, keys in env.items() if WEBHOOKS_URL in keys} == {"webhooks-dispatcher"}
    webhooks_url = services["webhooks-dispatcher"]["environment"][WEBHOOKS_URL]
    assert urlsplit(webhooks_url).username == WEBHOOKS_ROLE
