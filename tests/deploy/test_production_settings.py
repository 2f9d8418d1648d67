"""The production configuration in deploy/: complete, loadable, and room for the upload spool.

Every workload's settings are what ``load_settings`` makes of the ConfigMap plus the secret
keys that workload is given, so a value production refuses (SMTP without TLS, a weak key) or a
setting nobody set is caught here rather than at a pod's start.
"""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

import pytest
import yaml

from credbatch.config import RELAY_ROLE, Settings, load_settings
from tests.fixtures.manifests import (
    DEPLOY,
    K8S,
    Doc,
    by_name,
    of_kind,
    render,
    resolve_resources,
    settings_sources,
    visible_secret_keys,
)

# Settings production leaves unset on purpose (each with its default or derived value).
DELIBERATELY_UNSET = {
    "CREDBATCH_KEK_FILE",  # development only: production takes CREDBATCH_KEK from the Secret
    "CREDBATCH_WEBHOOK_KEK_FILE",  # likewise CREDBATCH_WEBHOOK_KEK
    "CREDBATCH_SMTP_CA_FILE",  # the system CAs; set it when a private bundle is mounted
}
_QUANTITY = re.compile(r"^(?P<n>\d+)(?P<unit>Ki|Mi|Gi|Ti|k|M|G|T)?$")
_UNITS = {
    None: 1,
    "Ki": 1 << 10,
    "Mi": 1 << 20,
    "Gi": 1 << 30,
    "Ti": 1 << 40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
}


@pytest.fixture(scope="module", params=["base", "prod"])
def production(request: pytest.FixtureRequest) -> list[Doc]:
    """The manifests that run in production mode: the base and the production overlay."""
    if request.param == "base":
        return resolve_resources(K8S / "base")
    return render(str(request.param))


def quantity_bytes(value: str) -> int:
    """A Kubernetes quantity of bytes ("4Gi", "512Mi", "1000000")."""
    match = _QUANTITY.match(value)
    assert match is not None, value
    return int(match["n"]) * _UNITS[match["unit"]]


def config_data(manifests: list[Doc]) -> dict[str, str]:
    data: dict[str, str] = by_name(manifests, "ConfigMap", "credbatch-config")["data"]
    return data


def placeholder_secrets() -> dict[str, str]:
    """The base's placeholder Secret, with keys production accepts in place of the zeros."""
    secret = by_name(resolve_resources(K8S / "base"), "Secret", "credbatch-secrets")
    values: dict[str, str] = dict(secret["stringData"])
    for key in ("CREDBATCH_KEK", "CREDBATCH_WEBHOOK_KEK"):
        values[key] = base64.b64encode(secrets.token_bytes(32)).decode()
    return values


def workload_env(manifests: list[Doc], workload: Doc) -> dict[str, str]:
    """What the workload's main container gets: ConfigMap, its secret keys, literal values."""
    env = dict(config_data(manifests))
    given = placeholder_secrets()
    for key in visible_secret_keys(workload):
        if key in given:
            env[key] = given[key]
    container = workload["spec"]["template"]["spec"]["containers"][0]
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
    return env


def test_every_workload_loads_its_production_settings(production: list[Doc]) -> None:
    for workload in of_kind(production, "Deployment") + of_kind(production, "Job"):
        settings = load_settings(workload_env(production, workload))
        name = workload["metadata"]["name"]
        assert settings.mode == "production", name
        assert settings.smtp_tls == "starttls", name
        assert settings.reflection is False, name
        assert settings.jwks_url is not None and settings.jwks_url.startswith("https://"), name
        if name == "credbatch-relay":
            assert f"://{RELAY_ROLE}:" in settings.relay_database_url
        if name in ("credbatch-webhooks", "credbatch-webhooks-dispatcher"):
            assert len(settings.webhook_kek_bytes()) == 32, name


def test_every_setting_is_configured_or_deliberately_left_out(production: list[Doc]) -> None:
    read = set(re.findall(r'"(CREDBATCH_[A-Z_]+)"', settings_sources()))
    configured = set(config_data(production)) | set(placeholder_secrets())
    for workload in of_kind(production, "Deployment") + of_kind(production, "Job"):
        configured |= {k for k in visible_secret_keys(workload) if not k.startswith("*")}
    assert read - configured == DELIBERATELY_UNSET


def _uploads_tmpdir(manifests: list[Doc]) -> tuple[str, dict[str, Any]]:
    """The uploads container's TMPDIR and the volume mounted there."""
    pod = by_name(manifests, "Deployment", "credbatch-uploads")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {v["name"]: v.get("value") for v in container.get("env", [])}
    tmpdir = env.get("TMPDIR") or "/tmp"  # noqa: S108 - Python's default, not a file we create
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == tmpdir]
    assert not mount.get("readOnly", False)
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    return tmpdir, volume


def test_uploads_spool_to_a_writable_tmpdir_sized_for_the_largest_upload(
    production: list[Doc],
) -> None:
    _, volume = _uploads_tmpdir(production)
    max_bytes = int(config_data(production)["CREDBATCH_MAX_BYTES"])
    # A file within CREDBATCH_MAX_BYTES is received whole into TMPDIR and spools to less than
    # twice its size there: three times its size for each of four uploads at once.
    assert quantity_bytes(volume["emptyDir"]["sizeLimit"]) >= 4 * 3 * max_bytes
    assert volume["emptyDir"].get("medium") != "Memory"  # on disk, not in the pod's memory


def test_compose_uploads_have_a_tmpfs_sized_for_the_largest_upload() -> None:
    services: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    uploads = services["uploads"]
    tmpdir = uploads["environment"].get("TMPDIR", "/tmp")  # noqa: S108 - Python's default
    (tmpfs,) = [v for v in uploads["volumes"] if v["type"] == "tmpfs" and v["target"] == tmpdir]
    max_bytes = int(uploads["environment"].get("CREDBATCH_MAX_BYTES") or Settings.max_bytes)
    assert int(tmpfs["tmpfs"]["size"]) >= 2 * 3 * max_bytes  # two uploads at once
    assert uploads["read_only"] is True
