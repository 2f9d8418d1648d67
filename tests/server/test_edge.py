"""The edge interceptor on a real grpc.aio server: authentication, roles, error mapping."""

from __future__ import annotations

import time
import uuid
import warnings
from collections.abc import Callable

import grpc
import jwt
import pytest

from credbatch.config import Settings
from credbatch.gen.templates.v1 import templates_service_pb2 as pb
from credbatch.gen.templates.v1 import templates_service_pb2_grpc as pb_grpc
from credbatch.server.runner import ServiceSpec
from tests.fixtures.grpc import RunningApp, StartApp, bearer, error_details

NAME = "credbatch.templates.v1.TemplateService"


@pytest.fixture
async def app(settings: Settings, start_app: StartApp) -> RunningApp:
    # The generated base servicer: no RPC is implemented, so calls that pass the edge end
    # UNIMPLEMENTED, which shows they got through authentication and authorisation.
    base = pb_grpc.TemplateServiceServicer()  # type: ignore[abstract]
    spec = ServiceSpec(NAME, lambda s: pb_grpc.add_TemplateServiceServicer_to_server(base, s))
    return await start_app(settings, [spec])


def _token(settings: Settings, **overrides: object) -> tuple[tuple[str, str], ...]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "alice",
        "tenant": str(uuid.uuid4()),
        "roles": ["org_admin"],
        "iat": now,
        "exp": now + 60,
    }
    claims.update(overrides)
    secret = str(overrides.pop("_secret", settings.jwt_secret))
    claims.pop("_secret", None)
    algorithm = str(claims.pop("_alg", "HS256"))
    with warnings.catch_warnings():
        # The tests sign with deliberately weak or wrong keys.
        warnings.simplefilter("ignore")
        key: str | None = None if algorithm == "none" else secret
        token = jwt.encode(claims, key, algorithm=algorithm)  # type: ignore[arg-type]
    return (("authorization", f"Bearer {token}"),)


CASES: dict[str, Callable[[Settings], tuple[tuple[str, str], ...]]] = {
    "no-token": lambda s: (),
    "not-bearer": lambda s: (("authorization", "Basic YWxpY2U6cHc="),),
    "bad-signature": lambda s: _token(s, _secret="wrong-secret-" * 4),
    "wrong-issuer": lambda s: _token(s, iss="evil"),
    "wrong-audience": lambda s: _token(s, aud="other"),
    "expired": lambda s: _token(s, exp=int(time.time()) - 120),
    "alg-none": lambda s: _token(s, _alg="none"),
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_unauthenticated(app: RunningApp, settings: Settings, case: str) -> None:
    stub = pb_grpc.TemplateServiceStub(app.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListCredentialSchemas(
            pb.ListCredentialSchemasRequest(), metadata=CASES[case](settings)
        )
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    details = error_details(caught.value)
    status, info = details.status, details.info
    assert status.code == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert info.reason in {"MISSING_TOKEN", "INVALID_TOKEN", "TOKEN_EXPIRED"}
    assert info.domain == "credbatch.dev"


async def test_role_without_right_is_permission_denied(app: RunningApp, settings: Settings) -> None:
    stub = pb_grpc.TemplateServiceStub(app.channel)
    observer = bearer(settings, uuid.uuid4(), "olga", ["observer"])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateCredentialSchema(pb.CreateCredentialSchemaRequest(), metadata=observer)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    info = error_details(caught.value).info
    assert info.reason == "ROLE_NOT_ALLOWED"
    no_roles = bearer(settings, uuid.uuid4(), "nobody", [])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListCredentialSchemas(pb.ListCredentialSchemasRequest(), metadata=no_roles)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_allowed_role_reaches_the_servicer(app: RunningApp, settings: Settings) -> None:
    stub = pb_grpc.TemplateServiceStub(app.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListCredentialSchemas(
            pb.ListCredentialSchemasRequest(),
            metadata=bearer(settings, uuid.uuid4(), "olga", ["observer"]),
        )
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    info = error_details(caught.value).info
    assert info.reason == "NOT_IMPLEMENTED"
    assert "not implemented yet" in (caught.value.details() or "")


class _Exploding(pb_grpc.TemplateServiceServicer):
    async def ListCredentialSchemas(
        self, request: pb.ListCredentialSchemasRequest, context: object
    ) -> pb.ListCredentialSchemasResponse:
        raise RuntimeError("holder alice@example.com broke it")


async def test_unexpected_error_is_internal_without_its_message(
    settings: Settings, start_app: StartApp
) -> None:
    servicer = _Exploding()  # type: ignore[abstract]
    spec = ServiceSpec(NAME, lambda s: pb_grpc.add_TemplateServiceServicer_to_server(servicer, s))
    running = await start_app(settings, [spec])
    stub = pb_grpc.TemplateServiceStub(running.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ListCredentialSchemas(
            pb.ListCredentialSchemasRequest(),
            metadata=bearer(settings, uuid.uuid4(), "olga", ["observer"]),
        )
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == "internal error"
    assert error_details(caught.value).info.reason == "INTERNAL"
