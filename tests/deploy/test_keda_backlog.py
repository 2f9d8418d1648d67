"""KEDA scales workers on the broker queue plus the dispatchable backlog in PostgreSQL."""

from __future__ import annotations

import re

from tests.fixtures.manifests import ROOT, Doc, by_name, of_kind

# The SQL the postgresql trigger runs must be a function granted to the monitoring role.
FUNCTIONS = ROOT / "credbatch" / "db" / "functions"


def test_keda_combines_queue_and_dispatchable_backlog(manifests: list[Doc]) -> None:
    scaled = by_name(manifests, "ScaledObject", "credbatch-worker")
    triggers = {t["name"]: t for t in scaled["spec"]["triggers"]}
    assert {t["type"] for t in triggers.values()} == {"rabbitmq", "postgresql"}
    modifiers = scaled["spec"]["advanced"]["scalingModifiers"]
    names = set(re.findall(r"[a-z_]+", modifiers["formula"]))
    assert names == set(triggers)
    assert int(modifiers["target"]) > 0
    assert modifiers["metricType"] == "AverageValue"

    (backlog,) = [t for t in triggers.values() if t["type"] == "postgresql"]
    query = backlog["metadata"]["query"]
    function = re.fullmatch(r"SELECT (\w+)\(\)", query)
    assert function, query
    granted = (FUNCTIONS / f"{function[1]}.sql").read_text()
    assert f"CREATE OR REPLACE FUNCTION {function[1]}(" in granted
    assert "current_setting('credbatch.monitor_role')" in granted
    assert int(backlog["metadata"]["targetQueryValue"]) > 0
    auth = by_name(manifests, "TriggerAuthentication", backlog["authenticationRef"]["name"])
    (ref,) = auth["spec"]["secretTargetRef"]
    assert ref["parameter"] == "connection"
    assert ref["name"] == "credbatch-secrets"
    for secret in of_kind(manifests, "Secret"):
        keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
        assert ref["key"] in keys
        url = secret.get("stringData", {}).get(ref["key"])
        if url:  # never the owner or the application role
            assert url.startswith("postgresql://credbatch_monitor")


def test_relay_keeps_room_for_every_worker_keda_may_start(manifests: list[Doc]) -> None:
    scaled = by_name(manifests, "ScaledObject", "credbatch-worker")
    config = by_name(manifests, "ConfigMap", "credbatch-config")["data"]
    prefetch = int(config["CREDBATCH_WORKER_PREFETCH"])
    assert (
        int(config["CREDBATCH_RELAY_MAX_IN_FLIGHT"]) >= scaled["spec"]["maxReplicaCount"] * prefetch
    )
