"""The webhook dispatchers reach public HTTPS, DNS, the database and the collector, nothing else.

Behind the address check (credbatch/webhooks/special_purpose.py) a NetworkPolicy limits what
a dispatcher can reach at all; here it is read rule by rule and asked about the same
addresses as the address check's own table.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from credbatch.webhooks.special_purpose import IPV4_RANGES, IPV6_RANGES, IPNetwork
from tests.fixtures.manifests import K8S, Doc, by_name, load_yaml_docs, of_kind
from tests.fixtures.network_policy import selects
from tests.webhooks.test_special_purpose import TABLE

DISPATCHER = "credbatch-webhooks-dispatcher"
# The private and internal ranges spelled out, whatever the tables say.
PRIVATE = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "127.0.0.0/8",
    "169.254.0.0/16",  # the cloud metadata service
    "100.64.0.0/10",
    "0.0.0.0/8",
    "fc00::/7",  # unique-local, AWS's metadata service fd00:ec2::254
    "fe80::/10",
    "::1/128",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "2002::/16",
    "2001::/32",
]


def _policy(manifests: list[Doc]) -> dict[str, Any]:
    """The dispatchers' own policy. The namespace's (networkpolicies.yaml) select them too,
    and none of those opens HTTPS to them: what they add up to is checked in
    test_network_policies.py."""
    labels = by_name(manifests, "Deployment", DISPATCHER)["spec"]["template"]["metadata"]["labels"]
    selecting = {
        doc["metadata"]["name"]: doc["spec"]
        for doc in of_kind(manifests, "NetworkPolicy")
        if selects(doc["spec"]["podSelector"], labels)
    }
    spec: dict[str, Any] = selecting.pop(DISPATCHER)
    assert "Egress" in spec["policyTypes"]
    for name, other in selecting.items():
        for rule in other.get("egress", []):
            assert ("TCP", 443) not in _ports(rule), name
    return spec


def _ports(rule: dict[str, Any]) -> set[tuple[str, int]]:
    return {(port["protocol"], port["port"]) for port in rule["ports"]}


def _within(inner: IPNetwork, outer: IPNetwork) -> bool:
    return inner[0] in outer and inner[-1] in outer


def _https_blocks(spec: dict[str, Any]) -> list[dict[str, Any]]:
    (rule,) = [rule for rule in spec["egress"] if ("TCP", 443) in _ports(rule)]
    assert all(set(peer) == {"ipBlock"} for peer in rule["to"])
    return [peer["ipBlock"] for peer in rule["to"]]


def _https_allowed(spec: dict[str, Any], text: str) -> bool:
    address = ipaddress.ip_address(text)
    for block in _https_blocks(spec):
        excepted = (ipaddress.ip_network(net) for net in block.get("except", []))
        if address in ipaddress.ip_network(block["cidr"]) and not any(
            address in net for net in excepted
        ):
            return True
    return False


def test_every_rule_names_its_ports_and_peers(manifests: list[Doc]) -> None:
    spec = _policy(manifests)
    for rule in spec["egress"]:
        # A rule without ports or peers would open every port or every destination.
        assert rule.get("ports") and rule.get("to"), rule
    ports = set().union(*(_ports(rule) for rule in spec["egress"]))
    assert ports == {("TCP", 443), ("UDP", 53), ("TCP", 53), ("TCP", 6432), ("TCP", 4317)}


def test_https_goes_to_public_addresses_only(manifests: list[Doc]) -> None:
    spec = _policy(manifests)
    blocks: dict[int, dict[str, Any]] = {
        ipaddress.ip_network(block["cidr"]).version: block for block in _https_blocks(spec)
    }
    assert blocks[4]["cidr"] == "0.0.0.0/0"
    # IPv6: global unicast only; the rest of the space is not excepted but left out.
    assert blocks[6]["cidr"] == "2000::/3"
    for version, ranges in ((4, IPV4_RANGES), (6, IPV6_RANGES)):
        cidr = ipaddress.ip_network(blocks[version]["cidr"])
        excepted = [ipaddress.ip_network(net) for net in blocks[version]["except"]]
        refused = [entry.network for entry in ranges if _within(entry.network, cidr)]
        # Every refused range is excepted, and every exception is a refused range.
        for net in refused:
            assert any(_within(net, outer) for outer in excepted), net
        assert set(excepted) <= set(refused)
    for text in PRIVATE:
        private = ipaddress.ip_network(text)
        assert not _https_allowed(spec, str(private[0])), text
        assert not _https_allowed(spec, str(private[-1])), text


def test_the_policy_agrees_with_the_address_check(manifests: list[Doc]) -> None:
    spec = _policy(manifests)
    for text, named in TABLE:
        if text.startswith("::ffff:"):
            continue  # IPv4-mapped: the dispatcher connects to it over IPv4
        assert _https_allowed(spec, text) == (named is None), text


def test_dns_goes_to_the_cluster_resolver_only(manifests: list[Doc]) -> None:
    spec = _policy(manifests)
    (rule,) = [rule for rule in spec["egress"] if ("UDP", 53) in _ports(rule)]
    assert _ports(rule) == {("UDP", 53), ("TCP", 53)}
    assert rule["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]


def test_the_database_and_the_collector_are_the_ones_configured(manifests: list[Doc]) -> None:
    spec = _policy(manifests)
    base = load_yaml_docs(K8S / "base" / "config.yaml")
    secrets = by_name(base, "Secret", "credbatch-secrets")["stringData"]
    config = by_name(base, "ConfigMap", "credbatch-config")["data"]
    for key in ("CREDBATCH_APP_DATABASE_URL", "CREDBATCH_WEBHOOKS_DATABASE_URL"):
        url = urlsplit(secrets[key])
        # A bare Service name: PgBouncer's Service in the dispatchers' own namespace, and
        # only its pods.
        assert url.hostname == "credbatch-pgbouncer" and url.port is not None
        (rule,) = [rule for rule in spec["egress"] if ("TCP", url.port) in _ports(rule)]
        assert _ports(rule) == {("TCP", url.port)}
        pgbouncer = by_name(manifests, "Deployment", "credbatch-pgbouncer")
        labels = pgbouncer["spec"]["template"]["metadata"]["labels"]
        ((peer,),) = [rule["to"]]
        assert set(peer) == {"podSelector"}
        assert peer["podSelector"]["matchLabels"].items() <= labels.items()
    collector = urlsplit(config["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert collector.hostname is not None and collector.port is not None
    namespace = collector.hostname.split(".")[1]
    (rule,) = [rule for rule in spec["egress"] if ("TCP", collector.port) in _ports(rule)]
    assert _ports(rule) == {("TCP", collector.port)}
    assert rule["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
    ]
