"""The role table covers exactly the RPCs the service descriptors define."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import credbatch.gen
from credbatch.auth.rules import RPC_ROLES, allowed_roles, is_public


def described_rpcs() -> set[str]:
    """``/package.Service/Method`` of every RPC in the generated ``*_pb2`` modules."""
    methods: set[str] = set()
    for module in pkgutil.walk_packages(credbatch.gen.__path__, credbatch.gen.__name__ + "."):
        if not module.name.endswith("_pb2"):
            continue
        descriptor = importlib.import_module(module.name).DESCRIPTOR
        for service in descriptor.services_by_name.values():
            methods |= {f"/{service.full_name}/{method.name}" for method in service.methods}
    return methods


def test_the_descriptors_define_every_service() -> None:
    services = {method.split("/")[1] for method in described_rpcs()}
    assert {
        "credbatch.templates.v1.TemplateService",
        "credbatch.uploads.v1.UploadService",
        "credbatch.batches.v1.BatchStatusService",
    } <= services


def test_every_rpc_has_a_role_rule() -> None:
    missing = described_rpcs() - set(RPC_ROLES)
    assert not missing, f"RPCs refused to everyone (no rule in credbatch/auth/rules.py): {missing}"


def test_every_rule_names_an_existing_rpc() -> None:
    unknown = set(RPC_ROLES) - described_rpcs()
    assert not unknown, f"rules for RPCs no service defines: {unknown}"


@pytest.mark.parametrize("method", sorted(RPC_ROLES))
def test_every_rule_admits_someone_and_needs_a_token(method: str) -> None:
    assert allowed_roles(method), "an empty rule refuses everyone: remove the RPC or the rule"
    assert not is_public(method)
