"""Reflection v1 beside v1alpha: a client built only from grpc/reflection/v1/reflection.proto
(compiled here with protoc, as grpcurl or grpc-js would load it) lists the services, fetches
their files and describes the v1 service itself; v1alpha clients keep working."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import grpc_tools
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_tools import protoc

from credbatch.config import Settings
from credbatch.server.reflection import V1_SERVICE, v1_file
from services.templates.main import service_specs
from tests.fixtures.grpc import StartApp
from tests.fixtures.rendering import InlineRenderer

CLIENT_PROTOS = Path(__file__).parent / "reflection_v1"
CLIENT_FILE = "grpc/reflection/v1/reflection.proto"


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


class V1Client:
    """A grpc.reflection.v1 stub from the .proto file: messages and method path from it."""

    def __init__(self, out: Path) -> None:
        descriptors = out / "v1.pb"
        code = protoc.main(
            [
                "protoc",
                f"-I{CLIENT_PROTOS}",
                f"-I{Path(grpc_tools.__file__).parent / '_proto'}",
                f"--descriptor_set_out={descriptors}",
                CLIENT_FILE,
            ]
        )
        assert code == 0
        self.file = descriptor_pb2.FileDescriptorSet.FromString(descriptors.read_bytes()).file[0]
        pool = descriptor_pool.DescriptorPool()
        pool.Add(self.file)
        found = pool.FindServiceByName(V1_SERVICE).methods_by_name["ServerReflectionInfo"]
        self.path = f"/{V1_SERVICE}/{found.name}"
        self.request: Callable[..., Any] = message_factory.GetMessageClass(found.input_type)
        self.response: Any = message_factory.GetMessageClass(found.output_type)

    async def ask(self, channel: grpc.aio.Channel, **request: str) -> Any:
        call = channel.stream_stream(
            self.path,
            request_serializer=_serialize,
            response_deserializer=self.response.FromString,
        )
        async for reply in call(iter([self.request(**request)])):
            return reply
        raise AssertionError("no reply")


@pytest.fixture
def v1_client(tmp_path: Path) -> V1Client:
    return V1Client(tmp_path)


@pytest.fixture
async def channel(
    settings: Settings, app_pool: asyncpg.Pool, start_app: StartApp
) -> grpc.aio.Channel:
    specs = service_specs(settings, app_pool, InlineRenderer())  # nothing renders here
    return (await start_app(settings.with_overrides(reflection=True), specs)).channel


def _files(reply: Any) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in reply.file_descriptor_response.file_descriptor_proto
    ]
    return {file.name: file for file in files}


async def test_a_v1_client_lists_and_describes_the_services(
    v1_client: V1Client, channel: grpc.aio.Channel
) -> None:
    listed = await v1_client.ask(channel, list_services="")
    names = {service.name for service in listed.list_services_response.service}
    assert names >= {
        "credbatch.templates.v1.TemplateService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    found = await v1_client.ask(
        channel, file_containing_symbol="credbatch.templates.v1.TemplateService"
    )
    files = _files(found)
    assert "credbatch/templates/v1/templates_service.proto" in files
    assert "google/api/annotations.proto" in files or any(
        "google/api/annotations.proto" in f.dependency for f in files.values()
    )
    missing = await v1_client.ask(channel, file_containing_symbol="no.such.Service")
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


async def test_the_v1_service_describes_itself_as_v1_clients_know_it(
    v1_client: V1Client, channel: grpc.aio.Channel
) -> None:
    found = _files(await v1_client.ask(channel, file_containing_symbol=V1_SERVICE))
    served = found[CLIENT_FILE]
    assert served.package == "grpc.reflection.v1"

    def shape(file: descriptor_pb2.FileDescriptorProto) -> dict[str, list[tuple[str, int, str]]]:
        return {
            message.name: [(f.name, f.number, f.type_name) for f in message.field]
            for message in file.message_type
        }

    assert shape(served) == shape(v1_client.file) == shape(v1_file())
    (service,) = served.service
    (method,) = service.method
    assert (method.input_type, method.output_type) == (
        ".grpc.reflection.v1.ServerReflectionRequest",
        ".grpc.reflection.v1.ServerReflectionResponse",
    )
    assert method.client_streaming and method.server_streaming


async def test_v1alpha_clients_keep_working(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for reply in stub.ServerReflectionInfo(iter([request])):
        names = {s.name for s in reply.list_services_response.service}
        assert {"credbatch.templates.v1.TemplateService", V1_SERVICE} <= names
        return
    raise AssertionError("no reply")
