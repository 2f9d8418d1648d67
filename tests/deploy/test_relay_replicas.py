"""More than one relay in every target, and a disruption budget that keeps one running."""

from __future__ import annotations

from tests.fixtures.manifests import Doc, by_name


def test_two_relays_and_a_budget_that_never_drains_the_last(manifests: list[Doc]) -> None:
    relay = by_name(manifests, "Deployment", "credbatch-relay")
    assert relay["spec"]["replicas"] >= 2
    budget = by_name(manifests, "PodDisruptionBudget", "credbatch-relay")["spec"]
    # maxUnavailable: 1 of one replica protects nothing; minAvailable: 1 of two always holds one.
    assert budget.get("minAvailable") == 1
    assert "maxUnavailable" not in budget
    assert budget["minAvailable"] < relay["spec"]["replicas"], "a drain could never proceed"
    spread = relay["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} >= {"kubernetes.io/hostname"}
