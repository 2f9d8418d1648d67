"""The signer holds the KEK: reachable inside the cluster only, and by the public pods alone.

Its Service is a ClusterIP that no Ingress, gateway route or Envoy cluster names, and a
NetworkPolicy admits connections from the public pods only, on the signer's port.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import yaml

from credbatch.config import Settings
from tests.fixtures.manifests import DEPLOY, Doc, by_name, of_kind

SIGNER = "credbatch-signer"
PUBLIC = "credbatch-public"


def _pod_labels(manifests: list[Doc], name: str) -> dict[str, str]:
    labels: dict[str, str] = by_name(manifests, "Deployment", name)["spec"]["template"]["metadata"][
        "labels"
    ]
    return labels


def test_the_signer_service_is_cluster_internal(manifests: list[Doc]) -> None:
    service = by_name(manifests, "Service", SIGNER)
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert all("nodePort" not in port for port in service["spec"]["ports"])
    assert "externalIPs" not in service["spec"]
    ports = {port["name"]: port["port"] for port in service["spec"]["ports"]}
    assert ports == {"http": Settings.signer_port, "metrics": 9100}
    # Nothing routes traffic from outside to it.
    for kind in ("Ingress", "HTTPRoute", "GRPCRoute", "Gateway"):
        for doc in of_kind(manifests, kind):
            assert SIGNER not in yaml.safe_dump(doc), (kind, doc["metadata"]["name"])
    signer_labels = _pod_labels(manifests, SIGNER)
    for other in of_kind(manifests, "Service"):
        if other["spec"].get("type", "ClusterIP") != "ClusterIP":
            assert not other["spec"]["selector"].items() <= signer_labels.items()


def test_envoy_does_not_route_to_the_signer() -> None:
    config = yaml.safe_load((DEPLOY / "envoy" / "envoy.yaml").read_text())
    text = yaml.safe_dump(config)
    assert "signer" not in text
    assert str(Settings.signer_port) not in text


def test_public_calls_the_signer_service(manifests: list[Doc]) -> None:
    config = by_name(manifests, "ConfigMap", "credbatch-config")["data"]
    url = urlsplit(config["CREDBATCH_SIGNER_URL"])
    service = by_name(manifests, "Service", SIGNER)
    assert url.hostname == service["metadata"]["name"]
    assert url.port == service["spec"]["ports"][0]["port"]
    assert int(config["CREDBATCH_SIGNER_PORT"]) == Settings.signer_port


def test_only_the_public_pods_may_reach_the_signer(manifests: list[Doc]) -> None:
    policy = by_name(manifests, "NetworkPolicy", SIGNER)["spec"]
    signer_labels = _pod_labels(manifests, SIGNER)
    public_labels = _pod_labels(manifests, PUBLIC)
    assert policy["podSelector"]["matchLabels"].items() <= signer_labels.items()
    assert "Ingress" in policy["policyTypes"]
    # Its port from the public pods only (the metrics scrape: test_network_policies.py).
    (rule,) = policy["ingress"]
    (source,) = rule["from"]
    # A pod selector alone: pods of this namespace, and only those labelled as public.
    assert set(source) == {"podSelector"}
    selector = source["podSelector"]["matchLabels"]
    assert selector.items() <= public_labels.items()
    assert not selector.items() <= signer_labels.items()
    for deployment in of_kind(manifests, "Deployment"):
        name = deployment["metadata"]["name"]
        if name != PUBLIC:
            assert not selector.items() <= _pod_labels(manifests, name).items(), name
    assert rule["ports"] == [{"protocol": "TCP", "port": Settings.signer_port}]
