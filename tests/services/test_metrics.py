"""Each service process serves /metrics at CREDBATCH_METRICS_PORT after real work, and nothing at 0.

The processes run as in production (``python -m services.<name>``) against this run's
database; the tests call them over gRPC or HTTP, then scrape ``/metrics`` over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from credbatch.catalog import repository as catalog
from credbatch.catalog.model import SchemaDraft
from credbatch.config import Settings
from credbatch.gen.batches.v1 import batches_service_pb2, batches_service_pb2_grpc
from credbatch.gen.common.v1 import medium_pb2
from credbatch.gen.templates.v1 import templates_service_pb2, templates_service_pb2_grpc
from credbatch.gen.uploads.v1 import uploads_service_pb2, uploads_service_pb2_grpc
from credbatch.schema.model import Attribute, AttributeType
from credbatch.tenancy import TenantScope, tenant_transaction
from services.signer.protocol import BOUND_CREDENTIALS_PATH
from tests.fixtures.grpc import bearer
from tests.fixtures.observed import assert_serves_what_is_used
from tests.fixtures.processes import free_port, process_env
from tests.fixtures.scrape import find, listening_ports, stop, wait_for_sample

RPC_COUNT = "rpc_server_call_duration_seconds_count"
OK, UNAUTHENTICATED = "0", "16"


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@contextlib.contextmanager
def socket_bound() -> Iterator[int]:
    """A listening TCP socket on a free port, for the duration of the block."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port: int = sock.getsockname()[1]
        yield port


def spawn(settings: Settings, module: str, **env: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", module],
        env=process_env(settings, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def wait_serving(port: int, process: subprocess.Popen[bytes]) -> grpc.aio.Channel:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, stop(process)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return channel
        except grpc.aio.AioRpcError:
            pass
        assert time.monotonic() < deadline, "never SERVING"
        await asyncio.sleep(0.2)


async def test_templates_process_counts_rpcs_by_method_and_status(
    settings: Settings, ports: tuple[int, int]
) -> None:
    grpc_port, metrics_port = ports
    process = spawn(
        settings,
        "services.templates",
        CREDBATCH_TEMPLATES_PORT=str(grpc_port),
        CREDBATCH_METRICS_PORT=str(metrics_port),
    )
    try:
        channel = await wait_serving(grpc_port, process)
        stub = templates_service_pb2_grpc.TemplateServiceStub(channel)
        metadata = bearer(settings, uuid.uuid4(), "alice", ["org_admin"])
        for _ in range(2):
            await stub.ListCredentialSchemas(
                templates_service_pb2.ListCredentialSchemasRequest(), metadata=metadata
            )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListCredentialSchemas(templates_service_pb2.ListCredentialSchemasRequest())
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        await channel.close(None)
        labels = {
            "rpc_system": "grpc",
            "rpc_service": "credbatch.templates.v1.TemplateService",
            "rpc_method": "ListCredentialSchemas",
        }
        samples = await wait_for_sample(
            metrics_port, RPC_COUNT, {**labels, "rpc_grpc_status_code": OK}, minimum=2
        )
        (ok,) = find(samples, RPC_COUNT, **labels, rpc_grpc_status_code=OK)
        assert ok.value == 2
        (refused_count,) = find(samples, RPC_COUNT, **labels, rpc_grpc_status_code=UNAUTHENTICATED)
        assert refused_count.value == 1
        buckets = find(samples, "rpc_server_call_duration_seconds_bucket", **labels)
        assert {b.labels["le"] for b in buckets} >= {"0.005", "1.0", "+Inf"}
        # Health probes are not RPCs of the service.
        assert not find(samples, RPC_COUNT, rpc_service="grpc.health.v1.Health")
        assert_serves_what_is_used(samples, "grpc-service")
        # Nothing identifies a tenant, a caller or a request.
        for sample in samples:
            assert "tenant" not in " ".join(sample.labels)
            assert "alice" not in " ".join(sample.labels.values())
    finally:
        stop(process)


async def _schema(app_pool: asyncpg.Pool, tenant_id: uuid.UUID) -> str:
    scope = TenantScope(tenant_id, "admin", frozenset({"org_admin"}))
    async with tenant_transaction(app_pool, scope) as conn:
        created = await catalog.create_schema(
            conn,
            SchemaDraft("Member", (Attribute("name", AttributeType.STRING, required=True),)),
            "admin",
        )
    return created.schema.name


async def _upload(
    stub: uploads_service_pb2_grpc.UploadServiceStub,
    metadata: tuple[tuple[str, str], ...],
    schema: str,
    content: bytes,
) -> uploads_service_pb2.UploadBatchResponse:
    async def stream() -> AsyncIterator[uploads_service_pb2.UploadBatchRequest]:
        yield uploads_service_pb2.UploadBatchRequest(
            header=uploads_service_pb2.UploadBatchHeader(
                schema=schema, mediums=[medium_pb2.MEDIUM_EMAIL], filename="holders.csv"
            )
        )
        yield uploads_service_pb2.UploadBatchRequest(chunk=content)

    call: Any = stub.UploadBatch(stream(), metadata=metadata)  # type: ignore[arg-type]
    response: uploads_service_pb2.UploadBatchResponse = await call
    return response


async def test_uploads_process_counts_rows_and_bytes_read(
    settings: Settings, app_pool: asyncpg.Pool, ports: tuple[int, int]
) -> None:
    grpc_port, metrics_port = ports
    tenant_id = uuid.uuid4()
    schema = await _schema(app_pool, tenant_id)
    content = b"email,name\r\n" + b"".join(
        f"holder{i}@example.com,Holder {i}\r\n".encode() for i in range(3)
    )
    process = spawn(
        settings,
        "services.uploads",
        CREDBATCH_UPLOADS_PORT=str(grpc_port),
        CREDBATCH_METRICS_PORT=str(metrics_port),
    )
    try:
        channel = await wait_serving(grpc_port, process)
        stub = uploads_service_pb2_grpc.UploadServiceStub(channel)
        metadata = bearer(settings, tenant_id, "alice", ["issuer"], ["default"])
        response = await _upload(stub, metadata, schema, content)
        assert response.report.rows_total == 3
        await channel.close(None)
        samples = await wait_for_sample(metrics_port, "credbatch_upload_rows_total", minimum=3)
        (rows,) = find(samples, "credbatch_upload_rows_total")
        (size,) = find(samples, "credbatch_upload_size_bytes_total")
        assert (rows.value, size.value) == (3, len(content))
        assert_serves_what_is_used(samples, "uploads")
        (upload,) = find(
            samples,
            RPC_COUNT,
            rpc_service="credbatch.uploads.v1.UploadService",
            rpc_method="UploadBatch",
            rpc_grpc_status_code=OK,
        )
        assert upload.value == 1
    finally:
        stop(process)


async def test_batch_status_process_counts_rpcs(settings: Settings, ports: tuple[int, int]) -> None:
    grpc_port, metrics_port = ports
    process = spawn(
        settings,
        "services.batch_status",
        CREDBATCH_BATCHES_PORT=str(grpc_port),
        CREDBATCH_METRICS_PORT=str(metrics_port),
    )
    try:
        channel = await wait_serving(grpc_port, process)
        stub = batches_service_pb2_grpc.BatchStatusServiceStub(channel)
        metadata = bearer(settings, uuid.uuid4(), "alice", ["org_admin"])
        await stub.ListBatches(batches_service_pb2.ListBatchesRequest(), metadata=metadata)
        await channel.close(None)
        await wait_for_sample(
            metrics_port,
            RPC_COUNT,
            {
                "rpc_system": "grpc",
                "rpc_service": "credbatch.batches.v1.BatchStatusService",
                "rpc_method": "ListBatches",
                "rpc_grpc_status_code": OK,
            },
        )
    finally:
        stop(process)


async def test_public_process_times_requests_by_route_template(
    settings: Settings, ports: tuple[int, int]
) -> None:
    http_port, metrics_port = ports
    process = spawn(
        settings,
        "services.public",
        CREDBATCH_PUBLIC_PORT=str(http_port),
        CREDBATCH_METRICS_PORT=str(metrics_port),
        CREDBATCH_NONCE_KEY="metrics-tests-nonce-key-32-bytes-long",
    )
    token = "a-claim-token-that-must-not-become-a-label"
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as client:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, stop(process)
                try:
                    reply = await client.get(f"/claim/{token}", timeout=2)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "public never answered"
                    await asyncio.sleep(0.2)
        samples = await wait_for_sample(
            metrics_port,
            "http_server_request_duration_seconds_count",
            {
                "http_request_method": "GET",
                "http_route": "/claim/{token}",
                "http_response_status_code": str(reply.status_code),
            },
        )
        assert all(token not in " ".join(s.labels.values()) for s in samples)
        assert_serves_what_is_used(samples, "http-service")
    finally:
        stop(process)


async def test_signer_process_times_requests_by_route_and_status(
    settings: Settings, ports: tuple[int, int]
) -> None:
    """The signer's answers are counted like the public endpoints' (its 5xx alert reads them)."""
    http_port, metrics_port = ports
    shared = "metrics-tests-signer-token"
    process = spawn(
        settings,
        "services.signer",
        CREDBATCH_SIGNER_PORT=str(http_port),
        CREDBATCH_METRICS_PORT=str(metrics_port),
        CREDBATCH_SIGNER_TOKEN=shared,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as client:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, stop(process)
                try:
                    refused = await client.post(BOUND_CREDENTIALS_PATH, content=b"{}", timeout=2)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "signer never answered"
                    await asyncio.sleep(0.2)
            bad = await client.post(
                BOUND_CREDENTIALS_PATH,
                content=b"not json",
                headers={"authorization": f"Bearer {shared}"},
                timeout=2,
            )
        assert (refused.status_code, bad.status_code) == (401, 400)
        route = {"http_request_method": "POST", "http_route": BOUND_CREDENTIALS_PATH}
        samples = await wait_for_sample(
            metrics_port,
            "http_server_request_duration_seconds_count",
            {**route, "http_response_status_code": "400"},
        )
        (unauthorized,) = find(
            samples,
            "http_server_request_duration_seconds_count",
            **route,
            http_response_status_code="401",
        )
        assert unauthorized.value == 1
        assert_serves_what_is_used(samples, "http-service")
    finally:
        stop(process)


async def test_metrics_port_zero_serves_nothing(settings: Settings) -> None:
    grpc_port = free_port()
    process = spawn(
        settings,
        "services.templates",
        CREDBATCH_TEMPLATES_PORT=str(grpc_port),
        CREDBATCH_METRICS_PORT="0",
    )
    try:
        channel = await wait_serving(grpc_port, process)
        await channel.close(None)
        # The gRPC port is the only one the process listens on.
        assert listening_ports(process.pid) == {grpc_port}
    finally:
        stop(process)


async def test_a_taken_metrics_port_fails_the_start_with_a_message(
    settings: Settings,
) -> None:
    with socket_bound() as taken:
        process = spawn(
            settings,
            "services.templates",
            CREDBATCH_TEMPLATES_PORT=str(free_port()),
            CREDBATCH_METRICS_PORT=str(taken),
        )
        code = await asyncio.to_thread(process.wait, 30)
        output = stop(process)
    assert code == 2
    assert "cannot serve metrics" in output
