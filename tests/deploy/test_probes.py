"""The HTTP processes' probes: liveness never looks at the database, readiness does.

The paths are the ones the applications serve (``credbatch.server.http_readiness``), so a
renamed route cannot leave the manifests probing a 404.
"""

from __future__ import annotations

from typing import Any

from credbatch.server.http_readiness import LIVENESS_PATH, READINESS_PATH
from tests.fixtures.manifests import Doc, by_name

HTTP_COMPONENTS = ("credbatch-public", "credbatch-signer")


def _container(manifests: list[Doc], name: str) -> dict[str, Any]:
    deployment = by_name(manifests, "Deployment", name)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_readiness_follows_the_database_and_liveness_does_not(manifests: list[Doc]) -> None:
    for name in HTTP_COMPONENTS:
        container = _container(manifests, name)
        ports = {port["name"] for port in container["ports"]}
        probes = {
            kind: container[kind]["httpGet"]
            for kind in ("startupProbe", "readinessProbe", "livenessProbe")
        }
        assert all(probe["port"] in ports for probe in probes.values()), name
        assert probes["readinessProbe"]["path"] == READINESS_PATH, name
        assert probes["livenessProbe"]["path"] == LIVENESS_PATH, name
        assert probes["startupProbe"]["path"] == LIVENESS_PATH, name
        # The readiness check's own timeout (1.5 s, and 0.5 s more at most) fits the probe's.
        assert container["readinessProbe"]["timeoutSeconds"] >= 3, name
