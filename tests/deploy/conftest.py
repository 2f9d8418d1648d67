"""Load the deploy/ manifests: rendered by `kubectl kustomize` when kubectl is installed, and by
a small resolver of our own (resources only) so the structural checks run without it too."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = ("dev", "prod")

Doc = dict[str, Any]


def load_yaml_docs(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def resolve_resources(directory: Path) -> list[Doc]:
    """Every resource a kustomization lists, recursively (no patches, no generators)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    docs: list[Doc] = []
    for entry in kustomization.get("resources", []):
        target = (directory / entry).resolve()
        assert target.exists(), f"{directory}/kustomization.yaml lists missing {entry}"
        docs += resolve_resources(target) if target.is_dir() else load_yaml_docs(target)
    return docs


def render(overlay: str) -> list[Doc]:
    """The overlay as kubectl would apply it; own resolver when kubectl is absent."""
    kubectl = shutil.which("kubectl")
    directory = K8S / "overlays" / overlay
    if kubectl is None:
        return resolve_resources(directory)
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=["base", *OVERLAYS])
def manifests(request: pytest.FixtureRequest) -> list[Doc]:
    if request.param == "base":
        return resolve_resources(K8S / "base")
    return render(str(request.param))


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc.get("kind") == kind]


def by_name(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]
