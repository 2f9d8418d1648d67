"""Render kustomizations written by a test: an SRE's overlay laid over one of ours, or one of
ours with a setting changed (a new release's image tag)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures.manifests import K8S, Doc, load_yaml_docs


def render_in(tmp_path: Path, kustomization: dict[str, Any], resources: list[Path]) -> list[Doc]:
    """``kustomization`` written to ``tmp_path`` over ``resources``, rendered by kubectl."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl renders patches; without it there is nothing to check")
    # kustomize takes resources relative to the kustomization, never absolute.
    relative = [os.path.relpath(path, tmp_path) for path in resources]
    text = yaml.safe_dump({**kustomization, "resources": relative})
    (tmp_path / "kustomization.yaml").write_text(text)
    result = subprocess.run(
        [kubectl, "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    (tmp_path / "rendered.yaml").write_text(result.stdout)
    return load_yaml_docs(tmp_path / "rendered.yaml")


def render_over(tmp_path: Path, overlay: str, kustomization: dict[str, Any]) -> list[Doc]:
    """An overlay of the SRE's own on top of ``overlays/<overlay>``."""
    return render_in(tmp_path, kustomization, [K8S / "overlays" / overlay])


def render_copy(tmp_path: Path, overlay: str, images: list[dict[str, str]]) -> list[Doc]:
    """``overlays/<overlay>`` itself with other ``images`` (a release bumping its tag)."""
    directory = K8S / "overlays" / overlay
    # Its other files too (a generator's file sources are read beside the kustomization).
    shutil.copytree(directory, tmp_path, dirs_exist_ok=True)
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    resources = [(directory / entry).resolve() for entry in kustomization.pop("resources")]
    return render_in(tmp_path, {**kustomization, "images": images}, resources)


DEPLOY_DOC = K8S.parents[1] / "docs" / "deploy.md"


def documented_patches(containing: str) -> list[dict[str, Any]]:
    """The ``patches:`` of the YAML block of docs/deploy.md that mentions ``containing``, so
    the tests apply exactly what the page tells an SRE to write."""
    text = DEPLOY_DOC.read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```yaml\n")[1:]]
    (block,) = [block for block in blocks if containing in block]
    patches: list[dict[str, Any]] = yaml.safe_load(block)["patches"]
    return patches
