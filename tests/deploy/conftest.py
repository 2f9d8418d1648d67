"""The deploy/ manifests of every kustomize target, rendered once per test module."""

from __future__ import annotations

import pytest

from tests.fixtures.manifests import K8S, OVERLAYS, Doc, render, resolve_resources


@pytest.fixture(scope="module", params=["base", *OVERLAYS])
def manifests(request: pytest.FixtureRequest) -> list[Doc]:
    if request.param == "base":
        return resolve_resources(K8S / "base")
    return render(str(request.param))
