"""The descriptor set Envoy transcodes with: built from protos/, every service and method with
its google.api.http rule, the same services the Envoy configuration names, and resource
annotations that agree with the routes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from google.api import annotations_pb2, http_pb2, resource_pb2
from google.protobuf import descriptor_pb2

from credbatch.codegen import descriptor_set
from tests.fixtures.manifests import DEPLOY, ROOT

RESOURCES = {
    "credbatch.dev/CredentialSchema",
    "credbatch.dev/EmailTemplate",
    "credbatch.dev/SmsTemplate",
    "credbatch.dev/CertificateTemplate",
    "credbatch.dev/Batch",
    "credbatch.dev/Record",
    "credbatch.dev/WebhookEndpoint",
    "credbatch.dev/WebhookDelivery",
    "credbatch.dev/TenantProfile",
}
_BOUND = re.compile(r"\{(?P<field>\w+)=(?P<collection>\w+)/\*\}")
SERVICES = {
    "credbatch.templates.v1.TemplateService",
    "credbatch.uploads.v1.UploadService",
    "credbatch.batches.v1.BatchStatusService",
    "credbatch.webhooks.v1.WebhookService",
    "credbatch.tenants.v1.TenantService",
}


@pytest.fixture(scope="module")
def descriptors(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pb2.FileDescriptorSet:
    path: Path = tmp_path_factory.mktemp("descriptors") / "credbatch.pb"
    descriptor_set(path)
    parsed = descriptor_pb2.FileDescriptorSet()
    parsed.ParseFromString(path.read_bytes())
    return parsed


def _services(
    found: descriptor_pb2.FileDescriptorSet,
) -> dict[str, descriptor_pb2.ServiceDescriptorProto]:
    return {
        f"{file.package}.{service.name}": service for file in found.file for service in file.service
    }


def _rule(method: descriptor_pb2.MethodDescriptorProto) -> http_pb2.HttpRule:
    rule: http_pb2.HttpRule = method.options.Extensions[annotations_pb2.http]
    return rule


def test_descriptor_set_holds_every_service(descriptors: descriptor_pb2.FileDescriptorSet) -> None:
    assert set(_services(descriptors)) >= SERVICES
    # --include_imports: the annotation protos travel with it, as Envoy needs them.
    names = {file.name for file in descriptors.file}
    assert {"google/api/annotations.proto", "google/api/http.proto"} <= names


def test_every_unary_method_has_an_http_rule_and_no_stream_has_one(
    descriptors: descriptor_pb2.FileDescriptorSet,
) -> None:
    services = _services(descriptors)
    methods = 0
    streams = set()
    for name in SERVICES:
        for method in services[name].method:
            annotated = method.options.HasExtension(annotations_pb2.http)
            if method.client_streaming or method.server_streaming:
                # A REST request or response cannot hold a stream (README: REST gateways).
                assert not annotated, f"{name}/{method.name}"
                streams.add(method.name)
                continue
            assert annotated, f"{name}/{method.name}"
            rule = _rule(method)
            pattern = rule.WhichOneof("pattern")
            assert pattern in ("get", "post", "put", "patch", "delete"), method.name
            assert getattr(rule, pattern).startswith("/v1/"), method.name
            methods += 1
    assert methods >= 20
    assert streams == {"UploadBatch", "DownloadBatchReport", "WatchBatch"}


def test_known_routes(descriptors: descriptor_pb2.FileDescriptorSet) -> None:
    services = _services(descriptors)

    def route(service: str, method: str) -> tuple[str, str, str]:
        (found,) = [m for m in services[service].method if m.name == method]
        rule = _rule(found)
        pattern = rule.WhichOneof("pattern")
        assert pattern is not None
        return pattern, getattr(rule, pattern), rule.body

    assert route("credbatch.templates.v1.TemplateService", "CreateCredentialSchema") == (
        "post",
        "/v1/schemas",
        "schema",
    )
    assert route("credbatch.batches.v1.BatchStatusService", "GetBatch") == (
        "get",
        "/v1/{name=batches/*}",
        "",
    )
    assert route("credbatch.batches.v1.BatchStatusService", "ListRecords") == (
        "get",
        "/v1/{parent=batches/*}/records",
        "",
    )


def test_envoy_transcodes_exactly_these_services() -> None:
    config = yaml.safe_load((DEPLOY / "envoy" / "envoy.yaml").read_text())
    (listener,) = config["static_resources"]["listeners"]
    (manager,) = listener["filter_chains"][0]["filters"]
    filters = manager["typed_config"]["http_filters"]
    assert filters[-1]["name"] == "envoy.filters.http.router"
    (transcoder,) = [f for f in filters if f["name"] == "envoy.filters.http.grpc_json_transcoder"]
    settings = transcoder["typed_config"]
    # UploadService's only method is a client stream, which has no REST mapping.
    assert set(settings["services"]) == SERVICES - {"credbatch.uploads.v1.UploadService"}
    assert settings["proto_descriptor"] == "/etc/envoy/credbatch.pb"
    routes = manager["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    routed = {r["match"]["prefix"].strip("/"): r["route"]["cluster"] for r in routes}
    assert set(routed) == SERVICES
    for cluster in routed.values():
        # gRPC upstreams speak HTTP/2.
        options = clusters[cluster]["typed_extension_protocol_options"]
        http = options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        assert "http2_protocol_options" in http["explicit_http_config"]


def test_envoy_reads_the_descriptor_set_make_builds(
    descriptors: descriptor_pb2.FileDescriptorSet,
) -> None:
    # make descriptor-set writes build/credbatch.pb; compose mounts that file where the
    # transcoder reads it, so Envoy transcodes exactly the contract this test compiled.
    makefile = (ROOT / "Makefile").read_text()
    (recipe,) = re.findall(r"^descriptor-set:.*\n\t(.+)$", makefile, re.M)
    assert recipe.split()[-2:] == ["--descriptor-set", "build/credbatch.pb"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    envoy = yaml.safe_load((DEPLOY / "envoy" / "envoy.yaml").read_text())
    (listener,) = envoy["static_resources"]["listeners"]
    (manager,) = listener["filter_chains"][0]["filters"]
    (transcoder,) = [
        f
        for f in manager["typed_config"]["http_filters"]
        if f["name"] == "envoy.filters.http.grpc_json_transcoder"
    ]
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in compose["services"]["envoy"]["volumes"])
    source = mounts["../build/credbatch.pb"]
    assert source == transcoder["typed_config"]["proto_descriptor"]
    assert (DEPLOY / ".." / "build" / "credbatch.pb").resolve() == ROOT / "build" / "credbatch.pb"
    # Every service the transcoder names is one of the set, with at least one REST method.
    services = _services(descriptors)
    for name in transcoder["typed_config"]["services"]:
        assert any(m.options.HasExtension(annotations_pb2.http) for m in services[name].method)


def _messages(
    found: descriptor_pb2.FileDescriptorSet,
) -> dict[str, descriptor_pb2.DescriptorProto]:
    return {
        f".{file.package}.{message.name}": message
        for file in found.file
        for message in file.message_type
    }


def _resource_collections(found: descriptor_pb2.FileDescriptorSet) -> dict[str, str]:
    """Resource type -> the collections its single pattern names (`batches/{batch}` -> batches;
    a child's are joined: `webhookEndpoints/{e}/deliveries/{d}` -> webhookEndpoints/deliveries)."""
    collections: dict[str, str] = {}
    for message in _messages(found).values():
        if message.options.HasExtension(resource_pb2.resource):
            resource = message.options.Extensions[resource_pb2.resource]
            (pattern,) = resource.pattern
            collections[resource.type] = "/".join(pattern.split("/")[::2])
    return collections


def _reference(field: descriptor_pb2.FieldDescriptorProto) -> str:
    if not field.options.HasExtension(resource_pb2.resource_reference):
        return ""
    type_name: str = field.options.Extensions[resource_pb2.resource_reference].type
    return type_name


def test_resources_are_annotated(descriptors: descriptor_pb2.FileDescriptorSet) -> None:
    assert set(_resource_collections(descriptors)) == RESOURCES


def test_references_name_defined_resources(descriptors: descriptor_pb2.FileDescriptorSet) -> None:
    known = RESOURCES | {"*"}
    references = [
        _reference(field)
        for name, message in _messages(descriptors).items()
        if name.startswith(".credbatch.")
        for field in message.field
        if _reference(field)
    ]
    assert len(references) >= 24
    assert set(references) <= known


def test_route_variables_reference_their_resource(
    descriptors: descriptor_pb2.FileDescriptorSet,
) -> None:
    # `/v1/{name=batches/*}` binds GetBatchRequest.name to the batches collection, so that field
    # must reference the resource whose pattern starts with `batches/`.
    by_collection = {c: t for t, c in _resource_collections(descriptors).items()}
    messages = _messages(descriptors)
    bound = 0
    for service in _services(descriptors).values():
        for method in service.method:
            if not method.options.HasExtension(annotations_pb2.http):
                continue  # a stream
            rule = _rule(method)
            pattern = rule.WhichOneof("pattern")
            assert pattern is not None
            for variable in _BOUND.finditer(getattr(rule, pattern)):
                (field,) = [
                    f for f in messages[method.input_type].field if f.name == variable["field"]
                ]
                assert _reference(field) == by_collection[variable["collection"]], method.name
                bound += 1
    assert bound >= 10
