"""Attack: caller tokens and the keys that verify them.

* production refuses, at start, a JWKS fetched over plain http (anyone on the path could
  serve their own keys);
* a JWKS server that goes down after the first fetch: tokens still verify within the stale
  window, and are refused after it; a JWKS document over the size cap is refused;
* a token verified (and kept) before is refused once the key it was signed with is replaced
  under the same kid or withdrawn, from the next refresh of the keys;
* a token without a ``departments`` claim has no department: through the real
  BatchStatusService as the application role, such an observer sees nothing of ``default``.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import grpc
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from credbatch.auth.tokens import TokenVerifier
from credbatch.config import ConfigError, Settings, load_settings
from credbatch.errors import Unauthenticated
from credbatch.gen.batches.v1 import batches_service_pb2, batches_service_pb2_grpc
from credbatch.tenancy import TenantScope, tenant_transaction
from services.batch_status.main import service_specs as batch_specs
from tests.fixtures.batches import insert_batch
from tests.fixtures.grpc import StartApp, bearer

TENANT = uuid.uuid4()


class _Jwks:
    """A real HTTP server answering GET with ``body``, which the test can change or stop."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(owner.body)))
                self.end_headers()
                self.wfile.write(owner.body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def signer() -> Iterator[tuple[rsa.RSAPrivateKey, _Jwks]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwk["kid"] = "k1"
    server = _Jwks(json.dumps({"keys": [jwk]}).encode())
    try:
        yield private, server
    finally:
        server.stop()


def _token(private: rsa.RSAPrivateKey, kid: str = "k1") -> str:
    import time

    now = int(time.time())
    claims = {
        "iss": "credbatch-dev",
        "aud": "credbatch",
        "sub": "alice",
        "tenant": str(TENANT),
        "roles": ["observer"],
        "iat": now,
        "exp": now + 600,
    }
    return jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid})


def test_production_refuses_a_jwks_over_http_at_start() -> None:
    base = {"CREDBATCH_MODE": "production", "CREDBATCH_KEK": ""}
    with pytest.raises(ConfigError, match="https"):
        load_settings({**base, "CREDBATCH_JWKS_URL": "http://idp.example/jwks.json"})
    for allowed in ("https://idp.example/jwks.json", "/etc/credbatch/jwks.json"):
        assert load_settings({**base, "CREDBATCH_JWKS_URL": allowed}).jwks_url == allowed
    # Settings built another way still meet the check when the verifier is made.
    settings = Settings(mode="production", jwks_url="http://idp.example/jwks.json")
    with pytest.raises(ConfigError, match="https"):
        TokenVerifier(settings)


async def test_cached_keys_verify_while_the_jwks_is_down_within_the_stale_window(
    signer: tuple[rsa.RSAPrivateKey, _Jwks],
) -> None:
    private, server = signer
    now = [1000.0]
    settings = Settings(jwks_url=server.url, jwt_secret=None, jwt_algorithm="RS256")
    verifier = TokenVerifier(
        settings.with_overrides(jwks_stale_seconds=900.0), clock=lambda: now[0]
    )
    assert (await verifier.verify(_token(private))).user_id == "alice"
    server.stop()
    now[0] += 400  # past the refresh interval: the refresh fails, the cached key serves
    assert (await verifier.verify(_token(private))).user_id == "alice"
    now[0] += 400  # 800 s after the last good fetch: still inside the window
    assert (await verifier.verify(_token(private))).user_id == "alice"
    now[0] += 200  # 1000 s: past it
    with pytest.raises(Unauthenticated) as refused:
        await verifier.verify(_token(private))
    assert refused.value.reason == "JWKS_UNAVAILABLE"


def _jwks_of(private: rsa.RSAPrivateKey, kid: str) -> bytes:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    jwk["kid"] = kid
    return json.dumps({"keys": [jwk]}).encode()


async def test_a_token_verified_before_is_refused_once_its_key_is_replaced_or_withdrawn(
    signer: tuple[rsa.RSAPrivateKey, _Jwks],
) -> None:
    private, server = signer
    now = [1000.0]
    settings = Settings(jwks_url=server.url, jwt_secret=None, jwt_algorithm="RS256")
    verifier = TokenVerifier(settings, clock=lambda: now[0])
    token = _token(private)
    assert (await verifier.verify(token)).user_id == "alice"
    assert (await verifier.verify(token)).user_id == "alice"  # the kept entry
    # The identity provider replaces the key under the same kid: at the next refresh the
    # token, verified and kept before, is checked against the new key and refused.
    replacement = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server.body = _jwks_of(replacement, "k1")
    now[0] += 301
    with pytest.raises(Unauthenticated) as refused:
        await verifier.verify(token)
    assert refused.value.reason == "INVALID_TOKEN"
    renewed = _token(replacement)
    assert (await verifier.verify(renewed)).user_id == "alice"
    # Then it withdraws the key (only k2 published): the kept token is refused at once
    # after the next refresh.
    server.body = _jwks_of(rsa.generate_private_key(public_exponent=65537, key_size=2048), "k2")
    now[0] += 301
    with pytest.raises(Unauthenticated) as withdrawn:
        await verifier.verify(renewed)
    assert withdrawn.value.reason == "UNKNOWN_KEY"


async def test_an_oversized_jwks_is_refused(signer: tuple[rsa.RSAPrivateKey, _Jwks]) -> None:
    private, server = signer
    document = json.loads(server.body)
    document["padding"] = "x" * (64 * 1024)
    server.body = json.dumps(document).encode()
    verifier = TokenVerifier(Settings(jwks_url=server.url, jwt_secret=None, jwt_algorithm="RS256"))
    with pytest.raises(Unauthenticated) as refused:
        await verifier.verify(_token(private))
    assert refused.value.reason == "JWKS_UNAVAILABLE"


async def test_an_observer_without_departments_sees_nothing_of_default(
    settings: Settings, start_app: StartApp, app_pool: asyncpg.Pool
) -> None:
    tenant = uuid.uuid4()
    scope = TenantScope(tenant, "admin", frozenset({"org_admin"}))
    async with tenant_transaction(app_pool, scope) as conn:
        batch_id = (await insert_batch(conn, tenant, creator="admin", states=())).batch_id
    running = await start_app(settings, batch_specs(settings, app_pool))
    stub = batches_service_pb2_grpc.BatchStatusServiceStub(running.channel)
    name = f"batches/{batch_id}"

    granted = bearer(settings, tenant, "olga", ["observer"], ["default"])
    listed = await stub.ListBatches(batches_service_pb2.ListBatchesRequest(), metadata=granted)
    assert [b.name for b in listed.batches] == [name]

    for departments in ((), ("sales",)):
        nobody = bearer(settings, tenant, "oscar", ["observer"], departments)
        listed = await stub.ListBatches(batches_service_pb2.ListBatchesRequest(), metadata=nobody)
        assert list(listed.batches) == []
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await stub.GetBatch(batches_service_pb2.GetBatchRequest(name=name), metadata=nobody)
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
