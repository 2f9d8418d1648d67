"""The migration Job is named after the release, so a new image tag makes a new Job.

A Job's pod template is immutable: under one fixed name, applying a new image fails (or,
once the old Job is deleted, nothing re-runs it). Each overlay suffixes the name with the
tag of the image it runs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.layered import render_copy
from tests.fixtures.manifests import OVERLAYS, Doc, of_kind, render

# A DNS label: the Job controller copies the name into the pods' job-name label.
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?")


def _job(docs: list[Doc]) -> Doc:
    (job,) = of_kind(docs, "Job")
    return job


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_job_is_named_after_its_image_tag(overlay: str) -> None:
    job = _job(render(overlay))
    (container,) = job["spec"]["template"]["spec"]["containers"]
    tag = container["image"].rpartition(":")[2]
    assert job["metadata"]["name"] == f"credbatch-migrate-{tag}"
    assert DNS_LABEL.fullmatch(job["metadata"]["name"])
    # The same image as the processes it migrates for.
    images = {
        c["image"]
        for d in of_kind(render(overlay), "Deployment")
        if d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "credbatch"
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {container["image"]}
    # Finished Jobs of past releases go away by themselves.
    assert job["spec"]["ttlSecondsAfterFinished"] > 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_new_release_makes_a_new_job(overlay: str, tmp_path: Path) -> None:
    docs = render_copy(
        tmp_path, overlay, [{"name": "ghcr.io/example/credbatch", "newTag": "0.2.0-rc.1"}]
    )
    job = _job(docs)
    assert job["metadata"]["name"] == "credbatch-migrate-0.2.0-rc.1"
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"].endswith(":0.2.0-rc.1")
