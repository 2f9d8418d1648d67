"""Default deny, then exactly what each component needs, evaluated pod by pod.

Every connection a component could try (DNS, PostgreSQL, PgBouncer, RabbitMQ, the collector,
the internet on the ports that matter, the cloud metadata service, private addresses, every
other pod's every port) is put to the policies of each rendering (``network_policy``), and
the set that gets through must be exactly the component's needs, derived from the
configuration (the URLs' hosts and ports) rather than listed twice. Then the other way round:
who may connect to each port of each pod.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from tests.deploy.layered import documented_patches, render_over
from tests.fixtures.manifests import K8S, Doc, by_name, load_yaml_docs, of_kind, visible_secret_keys
from tests.fixtures.network_policy import Address, Peer, Pod, Policies

INGRESS_CONTROLLER = Pod({"app.kubernetes.io/name": "ingress-nginx"}, "ingress-nginx")
PROMETHEUS = Pod({"app.kubernetes.io/name": "prometheus"}, "monitoring")
KEDA = Pod({"app": "keda-operator"}, "keda")
DNS = Pod({"k8s-app": "kube-dns"}, "kube-system")
COLLECTOR = Pod({"app.kubernetes.io/name": "opentelemetry-collector"}, "observability")
STRANGER = Pod({"app": "shell"}, "default")
INTERNET = Address("93.184.215.14")
METADATA = Address("169.254.169.254")
PRIVATE = Address("10.1.2.3")
# Components that verify callers' tokens against CREDBATCH_JWKS_URL (HTTPS).
JWT_VERIFIERS = {"templates", "uploads", "batch-status", "webhooks", "tenants"}
PGBOUNCER_PORT = 6432
GRPC_PORTS = {
    "templates": 50051,
    "uploads": 50052,
    "batch-status": 50053,
    "webhooks": 50054,
    "tenants": 50056,
}


def _namespace(manifests: list[Doc]) -> str:
    namespace: str = of_kind(manifests, "Deployment")[0]["metadata"].get("namespace", "credbatch")
    return namespace


def _base_values() -> tuple[dict[str, str], dict[str, str]]:
    base = load_yaml_docs(K8S / "base" / "config.yaml")
    config = by_name(base, "ConfigMap", "credbatch-config")["data"]
    secrets = by_name(base, "Secret", "credbatch-secrets")["stringData"]
    return config, secrets


def _workloads(manifests: list[Doc]) -> dict[str, Doc]:
    """Every credbatch Deployment and the migration Job, by component (not PgBouncer's)."""
    docs = of_kind(manifests, "Deployment") + of_kind(manifests, "Job")
    found = {}
    for doc in docs:
        labels = doc["spec"]["template"]["metadata"]["labels"]
        if labels.get("app.kubernetes.io/name") == "credbatch" or doc["kind"] == "Job":
            found[labels["app.kubernetes.io/component"]] = doc
    return found


def _pod(doc: Doc, namespace: str) -> Pod:
    return Pod(doc["spec"]["template"]["metadata"]["labels"], namespace)


def _container_ports(doc: Doc) -> dict[str, int]:
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return {port["name"]: port["containerPort"] for port in container.get("ports", [])}


class World:
    """The pods of one rendering and the peers around them."""

    def __init__(self, manifests: list[Doc]) -> None:
        self.namespace = _namespace(manifests)
        self.policies = Policies(manifests, self.namespace)
        self.workloads = _workloads(manifests)
        self.pods = {name: _pod(doc, self.namespace) for name, doc in self.workloads.items()}
        self.services = {doc["metadata"]["name"]: doc for doc in of_kind(manifests, "Service")}
        # The placeholders of the Secret: PostgreSQL and RabbitMQ as pods of this namespace.
        self.postgres = Pod({"app": "postgres"}, self.namespace)
        self.rabbitmq = Pod({"app": "rabbitmq"}, self.namespace)
        # PgBouncer's pods as the rendering has them (pgbouncer.yaml), or as they would be.
        pgbouncers = [
            _pod(doc, self.namespace)
            for doc in of_kind(manifests, "Deployment")
            if doc["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name")
            == "pgbouncer"
        ]
        self.pgbouncer = (
            pgbouncers[0]
            if pgbouncers
            else Pod({"app.kubernetes.io/name": "pgbouncer"}, self.namespace)
        )
        self.neighbour = Pod({"app": "debug"}, self.namespace)
        self.manifests = manifests

    def database_targets(self, component: str) -> set[tuple[str, int]]:
        """Where the component's database URLs lead: ("pgbouncer", port) for a Service of
        the rendering (PgBouncer's), ("postgres", port) for any other host."""
        _, secrets = _base_values()
        targets = set()
        for key in visible_secret_keys(self.workloads[component]):
            if not key.endswith("DATABASE_URL"):
                continue
            url = urlsplit(secrets[key])
            assert url.hostname and url.port, key
            service = self.services.get(url.hostname)
            if service is None:
                targets.add(("postgres", url.port))
                continue
            (port,) = [p for p in service["spec"]["ports"] if p["port"] == url.port]
            selector = service["spec"]["selector"]
            (target,) = [
                doc
                for doc in of_kind(self.manifests, "Deployment")
                if selector.items() <= doc["spec"]["template"]["metadata"]["labels"].items()
            ]
            assert _pod(target, self.namespace).labels == self.pgbouncer.labels, url.hostname
            number = port["targetPort"]
            if isinstance(number, str):
                number = _container_ports(target)[number]
            targets.add(("pgbouncer", number))
        return targets


def _candidates(world: World) -> list[tuple[str, Peer, int, str]]:
    """Every destination worth asking about, named for the failure messages."""
    found: list[tuple[str, Peer, int, str]] = [
        ("dns", DNS, 53, "UDP"),
        ("dns", DNS, 53, "TCP"),
        ("postgres", world.postgres, 5432, "TCP"),
        ("pgbouncer", world.pgbouncer, 5432, "TCP"),
        ("pgbouncer", world.pgbouncer, 6432, "TCP"),
        ("rabbitmq", world.rabbitmq, 5672, "TCP"),
        ("rabbitmq-management", world.rabbitmq, 15672, "TCP"),
        ("collector", COLLECTOR, 4317, "TCP"),
        ("collector-http", COLLECTOR, 4318, "TCP"),
        ("neighbour", world.neighbour, 8080, "TCP"),
        ("stranger", STRANGER, 8080, "TCP"),
    ]
    for address, label in ((INTERNET, "internet"), (METADATA, "metadata"), (PRIVATE, "private")):
        for port in (25, 80, 443, 465, 587, 5432):
            found.append((label, address, port, "TCP"))
    for name, doc in world.workloads.items():
        for port in _container_ports(doc).values():
            found.append((name, world.pods[name], port, "TCP"))
    return found


def _needs(world: World, component: str) -> set[tuple[str, int, str]]:
    """What ``component`` must reach, from the configuration."""
    config, _ = _base_values()
    needs = {("dns", 53, "UDP"), ("dns", 53, "TCP")}
    for name, port in world.database_targets(component):
        needs.add((name, port, "TCP"))
    labels = world.pods[component].labels
    if labels.get("app.kubernetes.io/name") == "credbatch":
        # Every process traces to the collector, and may use PgBouncer (pgbouncer.yaml).
        collector = urlsplit(config["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert collector.port is not None
        needs |= {("collector", collector.port, "TCP"), ("pgbouncer", PGBOUNCER_PORT, "TCP")}
    if component in {"relay", "worker"}:
        _, secrets = _base_values()
        amqp = urlsplit(secrets["CREDBATCH_AMQP_URL"])
        assert amqp.port is not None
        needs.add(("rabbitmq", amqp.port, "TCP"))
    if component == "worker":
        assert urlsplit(config["CREDBATCH_SMS_URL"]).scheme == "https"
        needs |= {("internet", 443, "TCP"), ("internet", int(config["CREDBATCH_SMTP_PORT"]), "TCP")}
    if component in JWT_VERIFIERS:
        assert urlsplit(config["CREDBATCH_JWKS_URL"]).scheme == "https"
        needs.add(("internet", 443, "TCP"))
    if component == "webhooks-dispatcher":
        needs.add(("internet", 443, "TCP"))
    if component == "public":
        signer = urlsplit(config["CREDBATCH_SIGNER_URL"])
        assert signer.port is not None
        needs.add(("signer", signer.port, "TCP"))
    return needs


def test_the_namespace_denies_everything_by_default(manifests: list[Doc]) -> None:
    deny = by_name(manifests, "NetworkPolicy", "credbatch-default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    world = World(manifests)
    # A pod nobody planned for gets DNS and nothing else.
    reached = {
        name
        for name, peer, port, protocol in _candidates(world)
        if world.policies.connects(world.neighbour, peer, port, protocol)
    }
    assert reached == {"dns"}
    # Nothing from another namespace reaches any port of ours unless named below.
    for name, doc in world.workloads.items():
        for port in _container_ports(doc).values():
            assert not world.policies.connects(STRANGER, world.pods[name], port), (name, port)


def test_each_component_reaches_exactly_what_it_needs(manifests: list[Doc]) -> None:
    world = World(manifests)
    assert set(world.workloads) >= {"migrate", "public", "signer", "worker", "relay"}
    for component, pod in world.pods.items():
        reached = {
            (name, port, protocol)
            for name, peer, port, protocol in _candidates(world)
            if world.policies.connects(pod, peer, port, protocol)
        }
        assert reached == _needs(world, component), component


def test_who_may_connect_to_each_port(manifests: list[Doc]) -> None:
    world = World(manifests)
    config, _ = _base_values()
    metrics = int(config["CREDBATCH_METRICS_PORT"])
    # The APIs tenants and holders call, through the ingress controller.
    api_ports = {(name, port) for name, port in GRPC_PORTS.items()}
    api_ports.add(("public", int(config["CREDBATCH_PUBLIC_PORT"])))
    sources: dict[str, Pod] = {
        "ingress-controller": INGRESS_CONTROLLER,
        "prometheus": PROMETHEUS,
        "keda": KEDA,
        "stranger": STRANGER,
        "neighbour": world.neighbour,
        **world.pods,
    }
    for component, doc in world.workloads.items():
        for port_name, port in _container_ports(doc).items():
            allowed = {
                name
                for name, source in sources.items()
                if world.policies.connects(source, world.pods[component], port)
            }
            if port == metrics:
                expected = {"prometheus"}
            elif (component, port) in api_ports:
                expected = {"ingress-controller"}
            elif component == "signer" and port_name == "http":
                expected = {"public"}
            elif component == "bounces" and port_name == "smtp":
                # Mail systems on the internet (public addresses), no pod of the cluster.
                expected = set()
            else:
                # The health ports: probed by the kubelet, which these policies do not govern.
                assert port_name == "health", (component, port_name)
                expected = set()
            assert allowed == expected, (component, port_name)


def test_in_namespace_dependencies_accept_their_clients_only(manifests: list[Doc]) -> None:
    world = World(manifests)
    _, secrets = _base_values()
    clients = {
        name
        for name in world.pods
        if any(target == "postgres" for target, _ in world.database_targets(name))
    }
    assert "migrate" in clients
    for name, pod in world.pods.items():
        assert world.policies.connects(pod, world.postgres, 5432) == (name in clients), name
        assert world.policies.connects(pod, world.rabbitmq, 5672) == (name in {"relay", "worker"})
    assert world.policies.connects(world.pgbouncer, world.postgres, 5432)
    for outsider in (STRANGER, world.neighbour, INGRESS_CONTROLLER):
        assert not world.policies.connects(outsider, world.postgres, 5432)
        assert not world.policies.connects(outsider, world.rabbitmq, 5672)
        assert not world.policies.connects(outsider, world.pgbouncer, PGBOUNCER_PORT)
    # KEDA reads the backlog (PostgreSQL, directly or through PgBouncer) and the queue (the
    # management API), at the ports its URLs name.
    database = urlsplit(secrets["MONITOR_DATABASE_URL"])
    management = urlsplit(secrets["MONITOR_RABBITMQ_URL"])
    assert database.port is not None and management.port is not None
    assert world.policies.connects(KEDA, world.postgres, database.port)
    assert not world.policies.connects(KEDA, world.pgbouncer, PGBOUNCER_PORT)
    assert world.policies.connects(KEDA, world.rabbitmq, management.port)
    assert not world.policies.connects(KEDA, world.rabbitmq, 5672)


def test_every_rule_names_its_ports_and_open_address_ranges_leave_private_ones_out(
    manifests: list[Doc],
) -> None:
    for doc in of_kind(manifests, "NetworkPolicy"):
        spec = doc["spec"]
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            for rule in spec.get(direction, []):
                # A rule without ports or peers would open every port or every peer.
                assert rule.get("ports") and rule.get(peers_key), doc["metadata"]["name"]
                for peer in rule[peers_key]:
                    block = peer.get("ipBlock")
                    if block and ipaddress.ip_network(block["cidr"]).prefixlen == 0:
                        excepted = set(block["except"])
                        assert {"10.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12"} <= excepted


def _reaches(world: World, component: str, peer: Peer, port: int) -> bool:
    return world.policies.connects(world.pods[component], peer, port)


def test_each_peer_is_set_by_one_patch(tmp_path: Path) -> None:
    """The documented patches (docs/deploy.md): a database outside the cluster, another
    ingress controller; each one patch by the `credbatch/peer` label."""
    database = Address("10.20.0.5")
    patches = documented_patches("credbatch/peer=postgresql")
    world = World(render_over(tmp_path, "prod", {"patches": patches}))
    traefik = Pod({"app.kubernetes.io/name": "traefik"}, "traefik")
    assert _reaches(world, "migrate", database, 5432)
    assert world.policies.connects(world.pgbouncer, database, 5432)
    assert not _reaches(world, "migrate", world.postgres, 5432)
    assert not _reaches(world, "signer", Address("10.20.0.6"), 5432)
    assert world.policies.connects(traefik, world.pods["public"], 8000)
    assert world.policies.connects(traefik, world.pods["uploads"], 50052)
    assert not world.policies.connects(INGRESS_CONTROLLER, world.pods["public"], 8000)
    assert not world.policies.connects(traefik, world.pods["signer"], 50055)
