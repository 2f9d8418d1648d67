"""Every error of the public endpoints says what to change: ``error`` and ``error_description``.

The codes are the specs' (RFC 6749 §5.2 at the token endpoint); each description names the
parameter or condition at fault, and never echoes a code the client sent.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.public.errors import EXCEPTION_HANDLERS
from tests.services.public.oid4vci_world import (
    PRE_AUTHORIZED,
    Wallet,
    client_of,
    offer_one,
    oid4vci_app,
)


def _error(response: httpx.Response, status: int, code: str, *words: str) -> str:
    """The description of ``response``, checked to be the JSON error ``code`` naming ``words``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "error_description"} and body["error"] == code, body
    description: str = body["error_description"]
    for word in words:
        assert word in description, (word, description)
    return description


async def test_the_authorization_server_metadata_is_where_every_draft_looks(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    tenant = offered.tenant_id
    paths = [
        f"/.well-known/oauth-authorization-server/tenants/{tenant}",
        f"/tenants/{tenant}/.well-known/oauth-authorization-server",
        f"/.well-known/openid-configuration/tenants/{tenant}",
        f"/tenants/{tenant}/.well-known/openid-configuration",
    ]
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        documents = [(await client.get(path)).json() for path in paths]
        unknown = [await client.get(p.replace(str(tenant), str(uuid.uuid4()))) for p in paths]
    assert documents[0]["issuer"] == offered.issuer
    assert documents[0]["token_endpoint"] == f"{offered.issuer}/token"
    assert all(document == documents[0] for document in documents)
    for response in unknown:
        _error(response, 404, "not_found", "tenant")


async def test_token_errors_name_what_to_change(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    without_code = await offer_one(app_pool, mediums=("EMAIL",))
    tx_code = offered.link.tx_code
    assert tx_code is not None
    wrong = str((int(tx_code) + 1) % 1_000_000).zfill(6)
    path = f"/tenants/{offered.tenant_id}/token"
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        wallet, plain = Wallet(client, offered), Wallet(client, without_code)

        async def post(body: str | bytes) -> httpx.Response:
            return await client.post(
                path,
                content=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )

        async def endless() -> AsyncIterator[bytes]:
            for _ in range(64):
                yield b"a" * 1024

        cases = [
            (await client.post(path, json={}), 400, "invalid_request", "x-www-form-urlencoded"),
            (await post(b""), 400, "invalid_request", "grant_type"),
            (await post("grant_type=implicit"), 400, "unsupported_grant_type", PRE_AUTHORIZED),
            (await post(f"grant_type={PRE_AUTHORIZED}"), 400, "invalid_request", "pre-auth"),
            (await post("grant_type=a&grant_type=b"), 400, "invalid_request", "repeated"),
            (await post(b"grant_type=\xff"), 400, "invalid_request", "ASCII"),
            (await post("a" * 5000), 413, "invalid_request", "4096 bytes"),
            (
                await client.post(
                    path,
                    content=endless(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                ),
                413,
                "invalid_request",
                "4096 bytes",
            ),
            (await wallet.token(), 400, "invalid_request", "tx_code is required"),
            (await plain.token(tx_code="123456"), 400, "invalid_request", "omit tx_code"),
            (await wallet.token(tx_code=wrong), 400, "invalid_grant", "tx_code is wrong"),
            (await wallet.token(code="x" * 40), 400, "invalid_grant", "pre-authorized code"),
        ]
        for response, status, code, words in cases:
            description = _error(response, status, code, words)
            # Nothing the client sent comes back.
            for secret in (offered.code, tx_code, wrong, without_code.code):
                assert secret not in description
        granted = await wallet.token(tx_code=tx_code)
        again = await wallet.token(tx_code=tx_code)
    assert granted.status_code == 200
    _error(again, 400, "invalid_grant", "already redeemed")


async def test_offer_and_claim_errors_say_what_happened(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, signer_pool: asyncpg.Pool
) -> None:
    offered = await offer_one(app_pool)
    tenant = offered.tenant_id
    async with client_of(oid4vci_app(public_pool, signer_pool)) as client:
        _error(await client.get(f"/tenants/{tenant}/offers/nope"), 404, "not_found", "offer")
        _error(await client.get("/claim/nope"), 404, "not_found", "link")
        _error(await client.get("/claim/nope/credential"), 404, "not_found", "link")
        _error(await client.get("/c/nope"), 404, "not_found", "link")
        _error(await client.post(f"/tenants/{tenant}/nonce/x"), 404, "not_found", "openapi")
        _error(await client.get("/no/such/path"), 404, "not_found", "/openapi.yaml")
        wrong_method = await client.get(f"/tenants/{tenant}/token")
        _error(wrong_method, 405, "method_not_allowed", "GET", "POST")
        assert "POST" in wrong_method.headers["allow"]
        _error(await client.delete(offered.offer_path), 405, "method_not_allowed", "DELETE")


async def test_an_unforeseen_failure_answers_a_json_server_error() -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("a secret the client must not see")

    app = Starlette(routes=[Route("/broken", broken)], exception_handlers=EXCEPTION_HANDLERS)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://public.test") as client:
        response = await client.get("/broken")
    description = _error(response, 500, "server_error", "retry")
    assert "secret" not in description
