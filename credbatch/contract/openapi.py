"""docs/openapi.yaml, generated from the google.api.http annotations of the public protos.

    python -m credbatch.contract.openapi            # write docs/openapi.yaml
    python -m credbatch.contract.openapi --check    # fail when docs/openapi.yaml is stale

The description is what a gRPC-JSON transcoding gateway (deploy/envoy/envoy.yaml) serves: one
operation per annotated method, the path template expanded into path parameters
(`/v1/{name=batches/*}` becomes `/v1/batches/{batch}`, the variable named as the resource's
pattern names it), the fields neither in the path nor in the body as query parameters, bodies
and responses in the proto3 JSON mapping with the proto field names (the gateway prints them,
`preserve_proto_field_names`). Errors are google.rpc.Status with its details.

Streaming methods carry no annotation: a REST request and response cannot hold a stream.
They are listed in the description with what a REST client uses instead; a streaming method
without such an entry here fails generation, so a new stream cannot go undocumented.

The output is deterministic (file, service and method order of the protos), so a test can
regenerate it and compare.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from google.api import annotations_pb2, field_behavior_pb2, http_pb2, resource_pb2
from google.protobuf import descriptor_pb2

from credbatch.codegen import ROOT, descriptor_set

OUTPUT = ROOT / "docs" / "openapi.yaml"
SERVER = "http://127.0.0.1:8080"
# What a REST client uses instead of each streaming method.
STREAM_ALTERNATIVES = {
    "credbatch.uploads.v1.UploadService.UploadBatch": (
        "a client stream (a header, then the file in chunks): upload with a gRPC client or "
        "`credbatch upload`; every other step works over REST"
    ),
    "credbatch.batches.v1.BatchStatusService.DownloadBatchReport": (
        "a server stream of CSV chunks: page through the same rows with "
        "`GET /v1/batches/{batch}/records` (ListRecords)"
    ),
    "credbatch.batches.v1.BatchStatusService.WatchBatch": (
        "a server stream of batch states: poll `GET /v1/batches/{batch}` (GetBatch); its "
        "update_time says when a record last changed"
    ),
}
_ERROR_TYPES = (
    ".google.rpc.Status",
    ".google.rpc.ErrorInfo",
    ".google.rpc.BadRequest",
    ".google.rpc.RetryInfo",
)
_VARIABLE = re.compile(r"\{(?P<field>[\w.]+)(?:=(?P<template>[^}]+))?\}")
_SCALARS: dict[int, dict[str, Any]] = {
    descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE: {"type": "number", "format": "double"},
    descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT: {"type": "number", "format": "float"},
    # proto3 JSON writes 64-bit integers as strings (JavaScript numbers hold 53 bits).
    descriptor_pb2.FieldDescriptorProto.TYPE_INT64: {"type": "string", "format": "int64"},
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT64: {"type": "string", "format": "uint64"},
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT64: {"type": "string", "format": "int64"},
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    descriptor_pb2.FieldDescriptorProto.TYPE_INT32: {"type": "integer", "format": "int32"},
    descriptor_pb2.FieldDescriptorProto.TYPE_SINT32: {"type": "integer", "format": "int32"},
    descriptor_pb2.FieldDescriptorProto.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    descriptor_pb2.FieldDescriptorProto.TYPE_UINT32: {"type": "integer", "format": "uint32"},
    descriptor_pb2.FieldDescriptorProto.TYPE_FIXED32: {"type": "integer", "format": "uint32"},
    descriptor_pb2.FieldDescriptorProto.TYPE_BOOL: {"type": "boolean"},
    descriptor_pb2.FieldDescriptorProto.TYPE_STRING: {"type": "string"},
    descriptor_pb2.FieldDescriptorProto.TYPE_BYTES: {"type": "string", "format": "byte"},
}
# Well-known types have their own JSON forms.
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    ".google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    ".google.protobuf.Duration": {
        "type": "string",
        "description": "Seconds with an `s` suffix, e.g. `86400s`.",
        "example": "86400s",
    },
    ".google.protobuf.FieldMask": {
        "type": "string",
        "description": "Comma-separated field paths (the protos' field names).",
    },
    ".google.protobuf.Empty": {"type": "object"},
    ".google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": True,
    },
    ".google.protobuf.Struct": {"type": "object", "additionalProperties": True},
}
_TYPE_MESSAGE = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
_TYPE_ENUM = descriptor_pb2.FieldDescriptorProto.TYPE_ENUM
_REPEATED = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED


@dataclass
class _Catalog:
    """Every message and enum of the descriptor set by full name, with its comment."""

    messages: dict[str, descriptor_pb2.DescriptorProto] = field(default_factory=dict)
    enums: dict[str, descriptor_pb2.EnumDescriptorProto] = field(default_factory=dict)
    comments: dict[tuple[str, ...], str] = field(default_factory=dict)
    # Resource collections (`batches`, `webhookEndpoints/deliveries`) → pattern variables.
    variables: dict[tuple[str, ...], list[str]] = field(default_factory=dict)

    def comment(self, *key: str) -> str:
        return self.comments.get(key, "")


def _clean(text: str) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines()).strip()


def _walk_messages(
    prefix: str, messages: Any, path: tuple[int, ...]
) -> Iterator[tuple[str, descriptor_pb2.DescriptorProto, tuple[int, ...]]]:
    for index, message in enumerate(messages):
        name = f"{prefix}.{message.name}"
        here = (*path, index)
        yield name, message, here
        yield from _walk_messages(name, message.nested_type, (*here, 3))


def _catalog(found: descriptor_pb2.FileDescriptorSet) -> _Catalog:
    catalog = _Catalog()
    for file in found.file:
        comments = {
            tuple(location.path): _clean(location.leading_comments)
            for location in file.source_code_info.location
            if location.leading_comments
        }
        prefix = f".{file.package}"
        for name, message, path in _walk_messages(prefix, file.message_type, (4,)):
            catalog.messages[name] = message
            catalog.comments[(name,)] = comments.get(path, "")
            for index, item in enumerate(message.field):
                catalog.comments[(name, item.name)] = comments.get((*path, 2, index), "")
            for index, enum in enumerate(message.enum_type):
                catalog.enums[f"{name}.{enum.name}"] = enum
                catalog.comments[(f"{name}.{enum.name}",)] = comments.get((*path, 4, index), "")
            if message.options.HasExtension(resource_pb2.resource):
                for pattern in message.options.Extensions[resource_pb2.resource].pattern:
                    parts = pattern.split("/")
                    collections = tuple(parts[::2])
                    catalog.variables[collections] = [part.strip("{}") for part in parts[1::2]]
        for index, enum in enumerate(file.enum_type):
            catalog.enums[f"{prefix}.{enum.name}"] = enum
            catalog.comments[(f"{prefix}.{enum.name}",)] = comments.get((5, index), "")
        for s_index, service in enumerate(file.service):
            service_name = f"{prefix}.{service.name}"
            catalog.comments[(service_name,)] = comments.get((6, s_index), "")
            for m_index, method in enumerate(service.method):
                catalog.comments[(service_name, method.name)] = comments.get(
                    (6, s_index, 2, m_index), ""
                )
    return catalog


def _schema_name(full_name: str) -> str:
    """`.credbatch.batches.v1.Batch` → `credbatch.batches.v1.Batch` (a components key)."""
    return full_name.lstrip(".")


def _ref(full_name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{_schema_name(full_name)}"}


def _behaviors(item: descriptor_pb2.FieldDescriptorProto) -> set[int]:
    return set(item.options.Extensions[field_behavior_pb2.field_behavior])


class _Builder:
    """Collects component schemas while operations refer to them."""

    def __init__(self, catalog: _Catalog) -> None:
        self.catalog = catalog
        self.schemas: dict[str, dict[str, Any]] = {}

    def type_schema(self, item: descriptor_pb2.FieldDescriptorProto) -> dict[str, Any]:
        """The JSON schema of one value of the field (not the repetition)."""
        if item.type == _TYPE_MESSAGE:
            if item.type_name in _WELL_KNOWN:
                return dict(_WELL_KNOWN[item.type_name])
            self.message(item.type_name)
            return _ref(item.type_name)
        if item.type == _TYPE_ENUM:
            self.enum(item.type_name)
            return _ref(item.type_name)
        return dict(_SCALARS[item.type])

    def field_schema(self, item: descriptor_pb2.FieldDescriptorProto) -> dict[str, Any]:
        entry = self.catalog.messages.get(item.type_name)
        if entry is not None and entry.options.map_entry:
            _, value = entry.field
            schema: dict[str, Any] = {
                "type": "object",
                "additionalProperties": self.type_schema(value),
            }
        elif item.label == _REPEATED:
            schema = {"type": "array", "items": self.type_schema(item)}
        else:
            schema = self.type_schema(item)
        if "$ref" in schema:
            # OpenAPI 3.0 ignores siblings of $ref; allOf keeps the field's own description.
            schema = {"allOf": [schema]}
        return schema

    def message(self, full_name: str) -> None:
        key = _schema_name(full_name)
        if key in self.schemas:
            return
        message = self.catalog.messages[full_name]
        schema: dict[str, Any] = {"type": "object"}
        self.schemas[key] = schema  # before the fields: a message may refer to itself
        description = self.catalog.comment(full_name)
        if description:
            schema["description"] = description
        properties: dict[str, Any] = {}
        required: list[str] = []
        for item in message.field:
            prop = self.field_schema(item)
            text = self.catalog.comment(full_name, item.name)
            if text:
                prop["description"] = text
            behaviors = _behaviors(item)
            if field_behavior_pb2.OUTPUT_ONLY in behaviors:
                prop["readOnly"] = True
            if field_behavior_pb2.REQUIRED in behaviors:
                required.append(item.name)
            properties[item.name] = prop
        if properties:
            schema["properties"] = properties
        if required:
            schema["required"] = required

    def enum(self, full_name: str) -> None:
        key = _schema_name(full_name)
        if key in self.schemas:
            return
        enum = self.catalog.enums[full_name]
        schema: dict[str, Any] = {"type": "string", "enum": [v.name for v in enum.value]}
        description = self.catalog.comment(full_name)
        if description:
            schema["description"] = description
        self.schemas[key] = schema


@dataclass(frozen=True)
class _Route:
    method: str
    path: str
    body: str
    path_fields: dict[str, str]  # request field → the path's variables it spans


def _expand(template: str, catalog: _Catalog, where: str) -> tuple[str, dict[str, str]]:
    """`/v1/{name=batches/*}` → (`/v1/batches/{batch}`, {"name": "batch"})."""
    fields: dict[str, str] = {}

    def replace(match: re.Match[str]) -> str:
        name, inner = match["field"], match["template"]
        if inner is None:
            fields[name] = name
            return "{" + name + "}"
        parts = inner.split("/")
        collections = tuple(parts[::2])
        variables = catalog.variables.get(collections)
        if variables is None or any(part != "*" for part in parts[1::2]):
            raise SystemExit(f"{where}: no resource pattern matches {inner!r}")
        fields[name] = "/".join(variables)
        expanded = [
            part if index % 2 == 0 else "{" + variables[index // 2] + "}"
            for index, part in enumerate(parts)
        ]
        return "/".join(expanded)

    return _VARIABLE.sub(replace, template), fields


def _route(rule: http_pb2.HttpRule, catalog: _Catalog, where: str) -> _Route:
    if rule.additional_bindings:
        raise SystemExit(f"{where}: additional_bindings are not described; add support first")
    pattern = rule.WhichOneof("pattern")
    if pattern not in ("get", "put", "post", "delete", "patch"):
        raise SystemExit(f"{where}: an http rule of kind {pattern!r} is not described")
    path, fields = _expand(getattr(rule, pattern), catalog, where)
    return _Route(pattern, path, rule.body, fields)


def _parameters(
    builder: _Builder, request: str, route: _Route
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The path and query parameters of an operation, and its request body."""
    catalog = builder.catalog
    message = catalog.messages[request]
    parameters: list[dict[str, Any]] = []
    for name, variables in route.path_fields.items():
        text = catalog.comment(request, name)
        for variable in variables.split("/"):
            parameters.append(
                {
                    "name": variable,
                    "in": "path",
                    "required": True,
                    "description": f"The `{variable}` segment of `{name}`. {text}".strip(),
                    "schema": {"type": "string"},
                }
            )
    body: dict[str, Any] | None = None
    if route.body == "*":
        properties: dict[str, Any] = {}
        for item in message.field:
            if item.name not in route.path_fields:
                prop = builder.field_schema(item)
                text = catalog.comment(request, item.name)
                if text:
                    prop["description"] = text
                properties[item.name] = prop
        schema: dict[str, Any] = {"type": "object"}
        if properties:
            schema["properties"] = properties
        body = {"required": True, "content": {"application/json": {"schema": schema}}}
    elif route.body:
        (item,) = [f for f in message.field if f.name == route.body]
        body = {
            "required": True,
            "content": {"application/json": {"schema": builder.type_schema(item)}},
        }
    if route.body != "*":
        for item in message.field:
            if item.name in route.path_fields or item.name == route.body:
                continue
            if item.type == _TYPE_MESSAGE and item.type_name not in _WELL_KNOWN:
                raise SystemExit(f"{request}.{item.name}: a message as a query parameter")
            parameter: dict[str, Any] = {
                "name": item.name,
                "in": "query",
                "schema": builder.field_schema(item),
            }
            if item.label == _REPEATED:
                parameter["explode"] = True
            text = catalog.comment(request, item.name)
            if text:
                parameter["description"] = text
            if field_behavior_pb2.REQUIRED in _behaviors(item):
                parameter["required"] = True
            parameters.append(parameter)
    return parameters, body


def _streams_text(streams: list[str]) -> str:
    lines = [
        "Methods without a REST mapping (gRPC only, they stream), and what to use instead:",
        "",
    ]
    for name in streams:
        lines.append(f"- `{name}`: {STREAM_ALTERNATIVES[name]}.")
    return "\n".join(lines)


def describe(found: descriptor_pb2.FileDescriptorSet) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the public services in ``found``."""
    catalog = _catalog(found)
    builder = _Builder(catalog)
    paths: dict[str, dict[str, Any]] = {}
    tags: list[dict[str, str]] = []
    streams: list[str] = []
    for file in found.file:
        if not file.package.startswith("credbatch."):
            continue
        for service in file.service:
            service_name = f"{file.package}.{service.name}"
            tags.append({"name": service.name, "description": catalog.comment(f".{service_name}")})
            for method in service.method:
                where = f"{service_name}.{method.name}"
                if method.client_streaming or method.server_streaming:
                    if method.options.HasExtension(annotations_pb2.http):
                        raise SystemExit(f"{where}: a stream cannot map to REST; drop its rule")
                    if where not in STREAM_ALTERNATIVES:
                        raise SystemExit(f"{where}: say in STREAM_ALTERNATIVES what REST uses")
                    streams.append(where)
                    continue
                if not method.options.HasExtension(annotations_pb2.http):
                    raise SystemExit(f"{where}: no google.api.http rule")
                route = _route(method.options.Extensions[annotations_pb2.http], catalog, where)
                parameters, body = _parameters(builder, method.input_type, route)
                if method.output_type in _WELL_KNOWN:
                    response_schema = dict(_WELL_KNOWN[method.output_type])
                else:
                    builder.message(method.output_type)
                    response_schema = _ref(method.output_type)
                operation: dict[str, Any] = {
                    "tags": [service.name],
                    "operationId": f"{service.name}_{method.name}",
                    "summary": method.name,
                    "description": catalog.comment(f".{service_name}", method.name),
                }
                if parameters:
                    operation["parameters"] = parameters
                if body is not None:
                    operation["requestBody"] = body
                operation["responses"] = {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": response_schema}},
                    },
                    "default": {
                        "description": "An error: google.rpc.Status with its details "
                        "(ErrorInfo, BadRequest, RetryInfo) in the gRPC code's HTTP status.",
                        "content": {"application/json": {"schema": _ref(".google.rpc.Status")}},
                    },
                }
                paths.setdefault(route.path, {})[route.method] = operation
    missing = sorted(set(STREAM_ALTERNATIVES) - set(streams))
    if missing:
        raise SystemExit(f"STREAM_ALTERNATIVES names methods that are not streams: {missing}")
    for name in _ERROR_TYPES:
        builder.message(name)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "credbatch REST API (gRPC-JSON transcoding)",
            "version": "v1",
            "description": (
                "Generated by `make openapi` from the google.api.http annotations in protos/; "
                "do not edit. Served by a gRPC-JSON transcoding gateway such as "
                "deploy/envoy/envoy.yaml. Field names are the protos' (snake_case); 64-bit "
                "integers are strings, enums their value names, timestamps RFC 3339.\n\n"
                + _streams_text(streams)
            ),
        },
        "servers": [{"url": SERVER, "description": "Envoy of deploy/compose.yaml"}],
        "security": [{"bearer": []}],
        "tags": tags,
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": dict(sorted(builder.schemas.items())),
        },
    }


class _Dumper(yaml.SafeDumper):
    """Multi-line text as literal blocks, which read as the text itself."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def render(found: descriptor_pb2.FileDescriptorSet) -> str:
    """docs/openapi.yaml's text."""
    header = "# Generated by `make openapi` (python -m credbatch.contract.openapi). Do not edit.\n"
    body = yaml.dump(
        describe(found), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )
    return header + body


def build() -> str:
    """Compile the public protos (as `make descriptor-set` does) and render the description."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "credbatch.pb"
        descriptor_set(path)
        found = descriptor_pb2.FileDescriptorSet()
        found.ParseFromString(path.read_bytes())
    return render(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the file is stale")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    text = build()
    if args.check:
        current = args.output.read_text() if args.output.is_file() else ""
        if current != text:
            print(f"{args.output} is stale: run `make openapi`", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
