"""docs/connections.md's budget is the one the prod overlay and the settings make, and every
application role goes through PgBouncer in transaction mode (the owner directly)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from credbatch.db.pool_sizes import POOL_VARIABLES, PoolName, PoolSizes, pool_sizes
from tests.fixtures.manifests import (
    DEPLOY,
    K8S,
    ROOT,
    THIRD_PARTY,
    Doc,
    by_name,
    load_yaml_docs,
    of_kind,
    render,
)

DOC = ROOT / "docs" / "connections.md"
ROLE_URLS = (
    "CREDBATCH_APP_DATABASE_URL",
    "CREDBATCH_RELAY_DATABASE_URL",
    "CREDBATCH_WEBHOOKS_DATABASE_URL",
    "CREDBATCH_PUBLIC_DATABASE_URL",
    "CREDBATCH_SIGNER_DATABASE_URL",
    "CREDBATCH_REFRESHER_DATABASE_URL",
    "CREDBATCH_JANITOR_DATABASE_URL",
)
PGBOUNCER = ("credbatch-pgbouncer", 6432)


def _main_module(deployment: Doc) -> Path:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (module,) = container["args"]
    return ROOT / str(module).replace(".", "/") / "main.py"


def pools_of(deployment: Doc) -> list[PoolName]:
    """The pools the Deployment's process creates, read from its main module."""
    found = re.findall(r'pools\.args\("(\w+)"\)', _main_module(deployment).read_text())
    names = [pool for pool in POOL_VARIABLES if pool in found]
    assert len(names) == len(found), found
    return names


def replicas_at_most(docs: list[Doc], deployment: Doc) -> int:
    name = deployment["metadata"]["name"]
    for scaled in of_kind(docs, "ScaledObject"):
        if scaled["spec"]["scaleTargetRef"]["name"] == name:
            return int(scaled["spec"]["maxReplicaCount"])
    return int(deployment["spec"].get("replicas", 1))


def budget(docs: list[Doc]) -> dict[str, tuple[int, int, int]]:
    """Per Deployment: connections per pod, replicas at most, their product."""
    config = by_name(docs, "ConfigMap", "credbatch-config")["data"]
    sizes = pool_sizes(config, int(config.get("CREDBATCH_WORKER_PREFETCH") or 100))
    rows: dict[str, tuple[int, int, int]] = {}
    for deployment in of_kind(docs, "Deployment"):
        if deployment["metadata"]["name"] in THIRD_PARTY:
            continue
        per_pod = sum(sizes.args(pool)["max_size"] for pool in pools_of(deployment))
        replicas = replicas_at_most(docs, deployment)
        rows[deployment["metadata"]["name"]] = (per_pod, replicas, per_pod * replicas)
    return rows


def documented() -> tuple[dict[str, tuple[int, int, int]], int]:
    rows: dict[str, tuple[int, int, int]] = {}
    total = -1
    for line in DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("credbatch-"):
            rows[cells[0]] = (int(cells[1]), int(cells[2]), int(cells[3]))
        elif len(cells) == 4 and cells[0] == "total":
            total = int(cells[3])
    return rows, total


def test_every_process_creates_pools_sized_by_settings() -> None:
    docs = render("prod")
    seen = {
        pool
        for d in of_kind(docs, "Deployment")
        if d["metadata"]["name"] not in THIRD_PARTY
        for pool in pools_of(d)
    }
    assert seen == set(POOL_VARIABLES)
    for path in [*ROOT.glob("services/*/main.py"), *ROOT.glob("workers/*/main.py")]:
        text = path.read_text()
        # Every create_pool of a process passes its settings' sizes, never a literal.
        assert text.count("create_pool(") == text.count("pools.args("), path


def test_the_documented_budget_is_the_prod_overlays() -> None:
    computed = budget(render("prod"))
    rows, total = documented()
    assert rows == computed
    assert total == sum(connections for _, _, connections in computed.values())


def test_the_documented_defaults_are_the_settings() -> None:
    defaults = PoolSizes()
    text = DOC.read_text()
    for pool, variable in POOL_VARIABLES.items():
        match = re.search(rf"`{variable}` \| ([^|\n]+) \|", text)
        assert match is not None, variable
        assert str(getattr(defaults, pool)) in match.group(1), (variable, match.group(1))


def _pgbouncer_ini(docs: list[Doc]) -> configparser.ConfigParser:
    ini = configparser.ConfigParser(inline_comment_prefixes=(";",))
    ini.read_string(by_name(docs, "ConfigMap", "credbatch-pgbouncer")["data"]["pgbouncer.ini"])
    return ini


def test_pgbouncer_pools_transactions_within_postgres_default_limit() -> None:
    for overlay in ("dev", "prod"):
        docs = render(overlay)
        ini = _pgbouncer_ini(docs)["pgbouncer"]
        assert ini["pool_mode"] == "transaction"
        assert int(ini["max_prepared_statements"]) > 0
        assert int(ini["reserve_pool_size"]) > 0
        # Every pod's pools, with room for a rolling update's surge.
        clients = sum(c for _, _, c in budget(docs).values())
        assert int(ini["max_client_conn"]) >= 2 * clients
        replicas = int(by_name(docs, "Deployment", "credbatch-pgbouncer")["spec"]["replicas"])
        # PostgreSQL's default max_connections = 100: 3 superuser slots, about 8 direct.
        assert replicas * int(ini["max_db_connections"]) + 8 + 3 <= 100
        assert replicas >= 2
        budget_ = by_name(docs, "PodDisruptionBudget", "credbatch-pgbouncer")["spec"]
        assert budget_["minAvailable"] == 1


def test_application_roles_go_through_pgbouncer_and_the_owner_directly() -> None:
    base = by_name(load_yaml_docs(K8S / "base" / "config.yaml"), "Secret", "credbatch-secrets")
    dev = yaml.safe_load((K8S / "overlays" / "dev" / "kustomization.yaml").read_text())
    (generator,) = dev["secretGenerator"]
    dev_values = dict(literal.split("=", 1) for literal in generator["literals"])
    for values in (base["stringData"], dev_values):
        for key in ROLE_URLS:
            url = urlsplit(values[key])
            assert (url.hostname, url.port) == PGBOUNCER, key
        owner = urlsplit(values["CREDBATCH_DATABASE_URL"])
        assert owner.hostname == "postgres" and owner.port == 5432
        monitor = urlsplit(values["MONITOR_DATABASE_URL"])
        assert monitor.hostname == "postgres"
    listed = {line.split('"')[1] for line in base["stringData"]["PGBOUNCER_USERLIST"].splitlines()}
    assert listed == {urlsplit(base["stringData"][key]).username for key in ROLE_URLS}


def test_compose_sends_application_roles_through_pgbouncer() -> None:
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    assert "pgbouncer" in services
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if key in ROLE_URLS:
                url = urlsplit(value)
                assert (url.hostname, url.port) == ("pgbouncer", 6432), (name, key)
            if key == "CREDBATCH_DATABASE_URL":
                assert urlsplit(value).hostname == "postgres", name
    for name in services:
        if name != "pgbouncer" and "CREDBATCH_APP_DATABASE_URL" in (
            services[name].get("environment") or {}
        ):
            assert "pgbouncer" in services[name]["depends_on"], name
