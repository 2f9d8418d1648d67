"""Least privilege in deploy/: each workload sees only the secret keys it uses.

Only the migration Job gets the owner's database URL; only the issuance workers and the
signer the KEK; only the webhook service and dispatcher the webhook KEK; only the relay, the
webhook dispatcher and the workers their own roles' URLs (the roles allowed to run the
cross-tenant outbox functions and count fold, the webhook claim, and the listing of due status
lists); and the internet-facing public component gets nothing but its own role's URL (a role
that reads no table), the token it presents to the signer and the SMS token that signs the
provider's status callbacks; the bounce receiver the same role's URL and the bounce key; the
signer its own role's URL and no application role's either.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import yaml

from credbatch.config import (
    PUBLIC_ROLE,
    REFRESHER_ROLE,
    RELAY_ROLE,
    SIGNER_ROLE,
    WEBHOOKS_ROLE,
)
from tests.fixtures.manifests import DEPLOY, Doc, of_kind, visible_secret_keys

OWNER_URL = "CREDBATCH_DATABASE_URL"
RELAY_URL = "CREDBATCH_RELAY_DATABASE_URL"
WEBHOOKS_URL = "CREDBATCH_WEBHOOKS_DATABASE_URL"
APP_URL = "CREDBATCH_APP_DATABASE_URL"
PUBLIC_URL = "CREDBATCH_PUBLIC_DATABASE_URL"
SIGNER_URL = "CREDBATCH_SIGNER_DATABASE_URL"
REFRESHER_URL = "CREDBATCH_REFRESHER_DATABASE_URL"
KEK = "CREDBATCH_KEK"
WEBHOOK_KEK = "CREDBATCH_WEBHOOK_KEK"
SIGNER_TOKEN = "CREDBATCH_SIGNER_TOKEN"
NONCE_KEY = "CREDBATCH_NONCE_KEY"
BOUNCE_KEY = "CREDBATCH_BOUNCE_KEY"
SMS_TOKEN = "CREDBATCH_SMS_TOKEN"
EXPECTED = {
    "credbatch-migrate": {OWNER_URL},
    # The roles' passwords, to check clients' and log in to PostgreSQL with.
    "credbatch-pgbouncer": {"PGBOUNCER_USERLIST"},
    "credbatch-templates": {"CREDBATCH_APP_DATABASE_URL", "CREDBATCH_JWT_SECRET"},
    "credbatch-uploads": {"CREDBATCH_APP_DATABASE_URL", "CREDBATCH_JWT_SECRET"},
    "credbatch-batch-status": {"CREDBATCH_APP_DATABASE_URL", "CREDBATCH_JWT_SECRET"},
    "credbatch-webhooks": {"CREDBATCH_APP_DATABASE_URL", "CREDBATCH_JWT_SECRET", WEBHOOK_KEK},
    "credbatch-tenants": {"CREDBATCH_APP_DATABASE_URL", "CREDBATCH_JWT_SECRET"},
    # The SMS token only checks the provider's status callbacks here.
    "credbatch-public": {PUBLIC_URL, SIGNER_TOKEN, NONCE_KEY, "CREDBATCH_SMS_TOKEN"},
    # The bounce receiver: the public role's URL and the key that checks VERP tokens.
    "credbatch-bounces": {PUBLIC_URL, BOUNCE_KEY},
    "credbatch-signer": {SIGNER_URL, KEK, SIGNER_TOKEN},
    # Its own role claims and sweeps; dead letters are recorded as the application role.
    "credbatch-relay": {RELAY_URL, APP_URL, "CREDBATCH_AMQP_URL"},
    # Its own role claims; each delivery is read and recorded as the application role.
    "credbatch-webhooks-dispatcher": {WEBHOOKS_URL, APP_URL, WEBHOOK_KEK},
    # Its own role lists every tenant's due status lists; each is signed as the application role.
    "credbatch-worker": {
        "CREDBATCH_APP_DATABASE_URL",
        REFRESHER_URL,
        "CREDBATCH_AMQP_URL",
        KEK,
        "CREDBATCH_SMS_ACCOUNT",
        "CREDBATCH_SMS_TOKEN",
        "CREDBATCH_SMTP_USERNAME",
        "CREDBATCH_SMTP_PASSWORD",
        BOUNCE_KEY,
    },
}


ROLE_URLS = {
    RELAY_URL: RELAY_ROLE,
    WEBHOOKS_URL: WEBHOOKS_ROLE,
    PUBLIC_URL: PUBLIC_ROLE,
    SIGNER_URL: SIGNER_ROLE,
    REFRESHER_URL: REFRESHER_ROLE,
}


def _name(doc: Doc) -> str:
    """The workload's name; the migration Job's without its release suffix."""
    name: str = doc["metadata"]["name"]
    if doc["kind"] == "Job" and name.startswith("credbatch-migrate"):
        return "credbatch-migrate"
    return name


def test_each_workload_sees_exactly_the_secret_keys_it_needs(manifests: list[Doc]) -> None:
    workloads = of_kind(manifests, "Deployment") + of_kind(manifests, "Job")
    seen = {_name(doc): visible_secret_keys(doc) for doc in workloads}
    assert seen == EXPECTED


def test_only_the_migration_job_sees_the_owner_url_and_public_sees_no_key(
    manifests: list[Doc],
) -> None:
    def holders_of(key: str) -> set[str]:
        return {_name(d) for d in workloads if key in visible_secret_keys(d)}

    workloads = of_kind(manifests, "Deployment") + of_kind(manifests, "Job")
    owners = {_name(d) for d in workloads if OWNER_URL in visible_secret_keys(d)}
    assert owners == {"credbatch-migrate"}
    (migrate,) = of_kind(manifests, "Job")
    assert _name(migrate) == "credbatch-migrate"
    assert holders_of(KEK) == {"credbatch-worker", "credbatch-signer"}
    assert holders_of(WEBHOOK_KEK) == {"credbatch-webhooks", "credbatch-webhooks-dispatcher"}
    (public,) = [d for d in workloads if d["metadata"]["name"] == "credbatch-public"]
    assert visible_secret_keys(public) == {PUBLIC_URL, SIGNER_TOKEN, NONCE_KEY, SMS_TOKEN}
    assert holders_of(BOUNCE_KEY) == {"credbatch-worker", "credbatch-bounces"}
    assert holders_of(SIGNER_TOKEN) == {"credbatch-public", "credbatch-signer"}
    assert holders_of(RELAY_URL) == {"credbatch-relay"}
    assert holders_of(WEBHOOKS_URL) == {"credbatch-webhooks-dispatcher"}
    assert holders_of(PUBLIC_URL) == {"credbatch-public", "credbatch-bounces"}
    assert holders_of(SIGNER_URL) == {"credbatch-signer"}
    assert holders_of(REFRESHER_URL) == {"credbatch-worker"}
    assert not holders_of(APP_URL) & {"credbatch-public", "credbatch-signer"}


def test_the_role_urls_name_their_roles(manifests: list[Doc]) -> None:
    for secret in of_kind(manifests, "Secret"):
        values = {**secret.get("stringData", {})}
        for key, role in ROLE_URLS.items():
            if key in values:
                assert urlsplit(values[key]).username == role, key


def test_compose_gives_each_key_and_role_url_only_to_the_services_that_use_them() -> None:
    services: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    env = {name: set(s.get("environment") or {}) for name, s in services.items()}

    def holders(key: str) -> set[str]:
        return {name for name, keys in env.items() if key in keys}

    assert holders(OWNER_URL) == {"migrate"}
    assert holders(KEK) == {"worker", "signer"}
    assert holders(WEBHOOK_KEK) == {"webhooks", "webhooks-dispatcher"}
    assert holders(SIGNER_TOKEN) == {"public", "signer"}
    assert holders(RELAY_URL) == {"relay"}
    assert holders(WEBHOOKS_URL) == {"webhooks-dispatcher"}
    assert holders(PUBLIC_URL) == {"public"}
    assert holders(SIGNER_URL) == {"signer"}
    assert holders(REFRESHER_URL) == {"worker"}
    assert not holders(APP_URL) & {"public", "signer", "migrate"}
    assert env["public"] & {OWNER_URL, APP_URL, KEK, WEBHOOK_KEK} == set()
    for key, role in ROLE_URLS.items():
        for name in holders(key):
            assert urlsplit(services[name]["environment"][key]).username == role, (name, key)
