"""docs/openapi.yaml: generated from the protos' http annotations, current, and coherent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from credbatch.codegen import descriptor_set
from credbatch.contract.openapi import OUTPUT, STREAM_ALTERNATIVES, build, describe

_PATH_VARIABLE = re.compile(r"\{(\w+)\}")


@pytest.fixture(scope="module")
def descriptors(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pb2.FileDescriptorSet:
    path: Path = tmp_path_factory.mktemp("descriptors") / "credbatch.pb"
    descriptor_set(path)
    parsed = descriptor_pb2.FileDescriptorSet()
    parsed.ParseFromString(path.read_bytes())
    return parsed


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(OUTPUT.read_text())
    return loaded


def test_the_checked_in_description_is_current() -> None:
    assert OUTPUT.read_text() == build(), "docs/openapi.yaml is stale: run `make openapi`"


def _methods(
    found: descriptor_pb2.FileDescriptorSet,
) -> dict[str, descriptor_pb2.MethodDescriptorProto]:
    return {
        f"{file.package}.{service.name}.{method.name}": method
        for file in found.file
        if file.package.startswith("credbatch.")
        for service in file.service
        for method in service.method
    }


def test_every_unary_method_is_an_operation_and_every_stream_is_listed(
    descriptors: descriptor_pb2.FileDescriptorSet, document: dict[str, Any]
) -> None:
    operations = {
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
    }
    methods = _methods(descriptors)
    unary = {
        "_".join(name.split(".")[-2:])
        for name, method in methods.items()
        if not (method.client_streaming or method.server_streaming)
    }
    assert operations == unary and len(operations) >= 25
    streams = {n for n, m in methods.items() if m.client_streaming or m.server_streaming}
    assert streams == set(STREAM_ALTERNATIVES)
    for name in streams:
        assert f"`{name}`" in document["info"]["description"]


def test_references_resolve_and_path_variables_are_parameters(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    text = yaml.safe_dump(document)
    references = set(re.findall(r"#/components/schemas/([\w.]+)", text))
    assert references and references <= set(schemas)
    assert {"google.rpc.Status", "google.rpc.ErrorInfo", "google.rpc.BadRequest"} <= set(schemas)
    for path, item in document["paths"].items():
        variables = _PATH_VARIABLE.findall(path)
        assert len(variables) == len(set(variables)), path
        for operation in item.values():
            in_path = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
            assert sorted(in_path) == sorted(variables), path


def test_shapes_follow_the_proto3_json_mapping(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    record = schemas["credbatch.batches.v1.Record"]["properties"]
    assert record["row_number"] == {
        "type": "integer",
        "format": "int32",
        "description": record["row_number"]["description"],
        "readOnly": True,
    }
    assert record["create_time"]["type"] == "string"
    assert record["create_time"]["format"] == "date-time"
    assert schemas["credbatch.batches.v1.RecordState"]["enum"][1] == "RECORD_STATE_PENDING"
    listed = document["paths"]["/v1/batches/{batch}/records"]["get"]
    assert [p["name"] for p in listed["parameters"]] == [
        "batch",
        "page_size",
        "page_token",
        "filter",
    ]
    created = document["paths"]["/v1/schemas"]["post"]
    body = created["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/credbatch.templates.v1.CredentialSchema"}
    assert [p["name"] for p in created["parameters"]] == ["request_id"]


def test_a_stream_with_an_http_rule_is_refused(
    descriptors: descriptor_pb2.FileDescriptorSet,
) -> None:
    changed = descriptor_pb2.FileDescriptorSet()
    changed.CopyFrom(descriptors)
    for file in changed.file:
        for service in file.service:
            for method in service.method:
                if method.name == "WatchBatch":
                    method.options.Extensions[
                        annotations_pb2.http
                    ].get = "/v1/{name=batches/*}:watch"
    with pytest.raises(SystemExit, match="WatchBatch: a stream cannot map to REST"):
        describe(changed)
