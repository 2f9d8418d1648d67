"""The public contract stands alone: `protoc -I protos` compiles every public proto with no other
include path, the published descriptor set carries google.rpc's error details, the internal job
message stays out of it, and every file names its Go and Java packages in full."""

from __future__ import annotations

import re
from pathlib import Path

import grpc_tools
import pytest
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

from credbatch.codegen import (
    INTERNAL,
    PROTOS,
    descriptor_set,
    internal_files,
    public_files,
    vendoring_differences,
)

ERROR_DETAILS = {
    "google.rpc.Status",
    "google.rpc.ErrorInfo",
    "google.rpc.BadRequest",
    "google.rpc.RetryInfo",
}
GO_MODULE = "github.com/credbatch/credbatch/gen/go/"


def _messages(found: descriptor_pb2.FileDescriptorSet) -> set[str]:
    return {f"{file.package}.{msg.name}" for file in found.file for msg in file.message_type}


def _parse(path: Path) -> descriptor_pb2.FileDescriptorSet:
    parsed = descriptor_pb2.FileDescriptorSet()
    parsed.ParseFromString(path.read_bytes())
    return parsed


def test_protoc_with_only_protos_compiles_every_public_proto(tmp_path: Path) -> None:
    # `python -m grpc_tools.protoc` adds exactly this bundled well-known-types folder, as every
    # protoc installation ships google/protobuf/*.proto; nothing else is on the path.
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    out = tmp_path / "contract.pb"
    files = [*public_files(), "google/rpc/status.proto", "google/rpc/error_details.proto"]
    code = protoc.main(
        [
            "protoc",
            f"-I{PROTOS}",
            f"-I{well_known}",
            f"--descriptor_set_out={out}",
            "--include_imports",
            *files,
        ]
    )
    assert code == 0
    found = _parse(out)
    assert _messages(found) >= ERROR_DETAILS
    assert {file.name for file in found.file} >= set(public_files())


def test_the_published_descriptor_set_carries_the_error_details(tmp_path: Path) -> None:
    out = tmp_path / "credbatch.pb"
    descriptor_set(out)
    found = _parse(out)
    assert _messages(found) >= ERROR_DETAILS
    assert "google.rpc.Code" in {f"{f.package}.{e.name}" for f in found.file for e in f.enum_type}
    # The RabbitMQ job body is ours alone: not published, nor compiled from protos/ by accident.
    assert "credbatch.jobs.v1.IssuanceJob" not in _messages(found)
    assert not any(name.startswith(("internal/", "credbatch/jobs/")) for name in public_files())


def test_the_internal_job_message_lives_outside_the_public_tree() -> None:
    assert internal_files() == ["credbatch/jobs/v1/issuance_job.proto"]
    assert not (PROTOS / "credbatch" / "jobs").exists()
    for name in public_files():
        assert "credbatch/jobs/" not in (PROTOS / name).read_text(), name


@pytest.mark.parametrize("name", public_files())
def test_every_public_proto_names_its_go_and_java_packages(name: str) -> None:
    text = (PROTOS / name).read_text()
    package = re.search(r"^package ([\w.]+);", text, re.M)
    assert package is not None
    directory = str(Path(name).parent)
    go = re.search(r'^option go_package = "([^";]+);(\w+)";', text, re.M)
    assert go is not None, f"{name}: no go_package"
    assert go.group(1) == GO_MODULE + directory
    assert go.group(2) == "".join(package.group(1).split(".")[-2:])
    assert "option java_multiple_files = true;" in text
    assert f'option java_package = "dev.{package.group(1)}";' in text
    outer = "".join(word.capitalize() for word in Path(name).stem.split("_")) + "Proto"
    assert f'option java_outer_classname = "{outer}";' in text


def test_the_internal_proto_names_an_internal_go_package() -> None:
    for name in internal_files():
        text = (INTERNAL / name).read_text()
        assert f'go_package = "{GO_MODULE}internal/{Path(name).parent};' in text


def test_vendored_googleapis_protos_match_the_installed_package() -> None:
    assert vendoring_differences() == []
    assert (PROTOS / "google" / "LICENSE").read_text().lstrip().startswith("Apache License")
