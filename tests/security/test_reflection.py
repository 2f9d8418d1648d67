"""Server reflection, which lists every service and message to anyone who asks, is served
only where the configuration turns it on (development, or CREDBATCH_REFLECTION=on)."""

from __future__ import annotations

import asyncpg
import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from credbatch.config import Settings, load_settings
from services.templates.main import service_specs
from tests.fixtures.grpc import StartApp
from tests.fixtures.rendering import InlineRenderer

LIST = reflection_pb2.ServerReflectionRequest(list_services="")


async def _list(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    async for reply in stub.ServerReflectionInfo(iter([LIST])):
        return {s.name for s in reply.list_services_response.service}
    return set()


async def test_reflection_is_off_unless_configured(
    settings: Settings, app_pool: asyncpg.Pool, start_app: StartApp
) -> None:
    specs = service_specs(settings, app_pool, InlineRenderer())  # nothing renders here
    off = await start_app(settings.with_overrides(reflection=False), specs)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _list(off.channel)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    on = await start_app(settings.with_overrides(reflection=True), specs)
    assert "credbatch.templates.v1.TemplateService" in await _list(on.channel)


def test_production_turns_reflection_off_unless_asked() -> None:
    production = {
        "CREDBATCH_MODE": "production",
        "CREDBATCH_JWKS_URL": "https://idp.example.com/jwks.json",
        "CREDBATCH_KEK": "",
    }
    assert load_settings(production).reflection is False
    assert load_settings({**production, "CREDBATCH_REFLECTION": "on"}).reflection is True
