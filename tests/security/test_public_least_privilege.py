"""The public component holds no key: it starts without the KEK, the owner's or the application
role's database URL (only its own role's), never loads key handling, and serves status list
tokens the workers signed and stored."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from credbatch.config import Settings
from credbatch.signing.jose import b64url_decode, verify_compact
from credbatch.signing.status_list import INVALID, VALID, get_status
from credbatch.tenancy import service_scope, tenant_transaction
from tests.fixtures.processes import free_port
from tests.security.public_world import (
    PUBLIC_URL,
    Issued,
    client_of,
    issue_one,
    public_app,
    worker_side,
)
from workers.issuance.status_refresher import run_status_refresher

# Runs a module as `python -m` would, refusing to import the modules that unwrap keys.
GUARD = r"""
import importlib.abc, runpy, sys

FORBIDDEN = {"credbatch.signing.keys", "credbatch.signing.kek"}


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in FORBIDDEN:
            raise ImportError(f"this process may not import {name}")
        return None


sys.meta_path.insert(0, Refuse())
runpy.run_module(sys.argv[1], run_name="__main__", alter_sys=True)
"""


def public_env(settings: Settings, port: int) -> dict[str, str]:
    """Production settings for the public process: its own role's URL and nothing secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDBATCH_")}
    env.update(
        CREDBATCH_MODE="production",
        CREDBATCH_JWKS_URL="https://login.example.com/.well-known/jwks.json",
        CREDBATCH_PUBLIC_DATABASE_URL=settings.public_database_url,
        CREDBATCH_HOST="127.0.0.1",
        CREDBATCH_PUBLIC_PORT=str(port),
        CREDBATCH_PUBLIC_URL=PUBLIC_URL,
        CREDBATCH_NONCE_KEY=secrets.token_urlsafe(32),
    )
    return env


@contextlib.contextmanager
def guarded(module: str, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-c", GUARD, module],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()


def decoded_status(token: str, jwks: list[dict[str, str]], index: int) -> int:
    _, payload = verify_compact(token, jwks, typ="statuslist+jwt")
    bits = zlib.decompress(b64url_decode(payload["status_list"]["lst"]))
    return get_status(bits, index, payload["status_list"]["bits"])


@pytest.mark.integration  # starts a child process, with no fixture to say so
def test_the_guard_refuses_key_handling() -> None:
    # Without this, a guard that let everything through would pass the test below.
    result = subprocess.run(
        [sys.executable, "-c", GUARD, "credbatch.signing.keys"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "may not import credbatch.signing.keys" in result.stderr


async def test_public_serves_without_kek_or_owner_url_and_never_loads_keys(
    db_settings: Settings, app_pool: asyncpg.Pool
) -> None:
    keys, signer = worker_side(app_pool)
    issued = await issue_one(app_pool, keys, signer)
    port = free_port()
    env = public_env(db_settings, port)
    assert not {"CREDBATCH_KEK", "CREDBATCH_DATABASE_URL", "CREDBATCH_APP_DATABASE_URL"} & set(env)
    with guarded("services.public", env) as process:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    output = process.stdout.read() if process.stdout else ""
                    pytest.fail(f"public exited {process.returncode}:\n{output}")
                try:
                    metadata = await client.get(issued.metadata_path)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "public did not start"
                    await asyncio.sleep(0.1)
            assert metadata.status_code == 200
            jwks = metadata.json()["jwks"]["keys"]
            status_list = await client.get(issued.list_path)
            assert status_list.status_code == 200
            assert status_list.headers["content-type"] == "application/statuslist+jwt"
            assert decoded_status(status_list.text, jwks, issued.index) == VALID
            claim = await client.get(f"/claim/{issued.claim_token}")
            assert claim.status_code == 200 and "Ada" in claim.text
        assert process.poll() is None, "public stopped while serving"


async def set_invalid(app_pool: asyncpg.Pool, issued: Issued) -> None:
    async with tenant_transaction(app_pool, service_scope(issued.tenant_id)) as conn:
        await conn.execute(
            "UPDATE status_lists SET bits = set_bit(bits, $3, 1) WHERE tenant_id = $1 AND id = $2",
            issued.tenant_id,
            issued.list_id,
            issued.index,
        )


async def test_status_list_is_served_from_storage_and_follows_a_change_after_refresh(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool, refresher_pool: asyncpg.Pool
) -> None:
    keys, signer = worker_side(app_pool, ttl=120)
    issued = await issue_one(app_pool, keys, signer)
    async with client_of(public_app(public_pool)) as client:
        jwks = (await client.get(issued.metadata_path)).json()["jwks"]["keys"]
        before = await client.get(issued.list_path)
        assert decoded_status(before.text, jwks, issued.index) == VALID
        _, payload = verify_compact(before.text, jwks, typ="statuslist+jwt")
        assert payload["ttl"] == 120 and payload["exp"] - payload["iat"] == 240
        # Revoked in the database: public keeps serving what was signed until a worker
        # signs again (it cannot sign itself).
        await set_invalid(app_pool, issued)
        assert (await client.get(issued.list_path)).text == before.text
        stop = asyncio.Event()
        refresher = asyncio.create_task(run_status_refresher(signer, refresher_pool, stop, 0.05))
        try:
            deadline = time.monotonic() + 20
            while True:
                token = (await client.get(issued.list_path)).text
                if token != before.text:
                    break
                assert time.monotonic() < deadline, "the refresher never re-signed the list"
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await refresher
    assert decoded_status(token, jwks, issued.index) == INVALID


async def test_a_token_nobody_refreshed_is_not_served_once_expired(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool
) -> None:
    keys, signer = worker_side(app_pool)
    issued = await issue_one(app_pool, keys, signer)
    async with tenant_transaction(app_pool, service_scope(issued.tenant_id)) as conn:
        await conn.execute(
            "UPDATE status_list_tokens SET expires_at = now() - interval '1 second'"
            " WHERE tenant_id = $1 AND list_id = $2",
            issued.tenant_id,
            issued.list_id,
        )
    async with client_of(public_app(public_pool)) as client:
        response = await client.get(issued.list_path)
    assert response.status_code == 503 and response.headers["retry-after"]
