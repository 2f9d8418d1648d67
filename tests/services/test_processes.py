"""Each gRPC service runs as its own process: health, reflection, graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from credbatch.config import Settings
from tests.fixtures.processes import GRACE, free_port, process_env

SERVICES = {
    "services.templates": ("CREDBATCH_TEMPLATES_PORT", "credbatch.templates.v1.TemplateService"),
    "services.uploads": ("CREDBATCH_UPLOADS_PORT", "credbatch.uploads.v1.UploadService"),
    "services.batch_status": (
        "CREDBATCH_BATCHES_PORT",
        "credbatch.batches.v1.BatchStatusService",
    ),
    "services.webhooks": ("CREDBATCH_WEBHOOKS_PORT", "credbatch.webhooks.v1.WebhookService"),
    "services.tenants": ("CREDBATCH_TENANTS_PORT", "credbatch.tenants.v1.TenantService"),
}


async def _wait_serving(port: int, service: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            assert proc.poll() is None, f"process exited early with {proc.returncode}"
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            assert time.monotonic() < deadline, "server never reported SERVING"
            await asyncio.sleep(0.2)


async def _listed_services(port: int) -> set[str]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names: set[str] = set()
        async for reply in call:
            names.update(s.name for s in reply.list_services_response.service)
        return names


@pytest.mark.parametrize("module", sorted(SERVICES))
async def test_process_serves_health_reflection_and_stops_on_sigterm(
    settings: Settings, module: str
) -> None:
    port_var, service = SERVICES[module]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", module],
        env=process_env(settings, **{port_var: str(port)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        await _wait_serving(port, service, proc)
        await _wait_serving(port, "", proc)
        listed = await _listed_services(port)
        assert service in listed
        assert "grpc.health.v1.Health" in listed
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, GRACE + 5)
        assert code == 0
        assert time.monotonic() - started < GRACE + 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        output = ""
        if proc.stdout:
            output = proc.stdout.read().decode()
            proc.stdout.close()
    assert "stopped" in output
