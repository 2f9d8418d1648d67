"""The public endpoints as an unauthenticated client sees them: security headers on every
response, a per-address rate limit, and claim links that stop working."""

from __future__ import annotations

import math
from datetime import timedelta

import asyncpg
import pytest

from services.public.headers import CONTENT_SECURITY_POLICY
from tests.security.public_world import (
    Issued,
    client_of,
    issue_one,
    public_app,
    worker_side,
)


@pytest.fixture
async def issued(app_pool: asyncpg.Pool) -> Issued:
    keys, signer = worker_side(app_pool)
    return await issue_one(app_pool, keys, signer)


def assert_hardened(response_headers: dict[str, str], path: str) -> None:
    assert response_headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert response_headers["x-content-type-options"] == "nosniff", path
    assert response_headers["referrer-policy"] == "no-referrer", path
    assert response_headers["x-frame-options"] == "DENY", path


async def test_every_route_and_every_status_carries_the_security_headers(
    app_pool: asyncpg.Pool, issued: Issued, public_pool: asyncpg.Pool
) -> None:
    expected = {
        issued.metadata_path: 200,
        issued.list_path: 200,
        f"/c/{issued.certificate_id}": 200,
        f"/claim/{issued.claim_token}": 200,
        f"/claim/{issued.claim_token}/credential": 200,
        "/claim/not-a-token": 404,
        "/no/such/route": 404,
    }
    async with client_of(public_app(public_pool)) as client:
        for path, status in expected.items():
            response = await client.get(path)
            assert response.status_code == status, path
            assert_hardened(dict(response.headers), path)
        # Nothing personal may be stored by a cache; keys and status lists may.
        for personal in (
            f"/claim/{issued.claim_token}",
            f"/claim/{issued.claim_token}/credential",
            f"/c/{issued.certificate_id}",
            "/claim/not-a-token",
        ):
            assert (await client.get(personal)).headers["cache-control"] == "no-store", personal
        for shared in (issued.metadata_path, issued.list_path):
            assert (await client.get(shared)).headers["cache-control"].startswith("public")
        # A method the route does not allow is answered with the headers too.
        refused = await client.post(f"/claim/{issued.claim_token}")
        assert refused.status_code == 405
        assert_hardened(dict(refused.headers), "POST claim")


async def test_a_client_over_its_burst_gets_429_with_retry_after_and_others_do_not(
    app_pool: asyncpg.Pool, issued: Issued, public_pool: asyncpg.Pool
) -> None:
    burst, rate = 5, 0.5
    app = public_app(public_pool, rate=rate, burst=burst)
    async with client_of(app, "203.0.113.9") as prober, client_of(app, "192.0.2.1") as holder:
        # Guessing claim tokens: the first `burst` guesses get their 404s, then 429.
        statuses = [(await prober.get(f"/claim/guess-{i}")).status_code for i in range(burst)]
        assert statuses == [404] * burst
        limited = await prober.get(f"/claim/{issued.claim_token}")
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= math.ceil(1 / rate)
        assert_hardened(dict(limited.headers), "429")
        # Another address has its own bucket.
        assert (await holder.get(f"/claim/{issued.claim_token}")).status_code == 200


async def test_an_expired_claim_link_answers_410_gone(
    app_pool: asyncpg.Pool, public_pool: asyncpg.Pool
) -> None:
    keys, signer = worker_side(app_pool)
    expired = await issue_one(app_pool, keys, signer, claim_expires_in=-timedelta(seconds=1))
    async with client_of(public_app(public_pool)) as client:
        page = await client.get(f"/claim/{expired.claim_token}")
        download = await client.get(f"/claim/{expired.claim_token}/credential")
        certificate = await client.get(f"/c/{expired.certificate_id}")
    assert page.status_code == 410 and "Ada" not in page.text
    assert download.status_code == 410 and "~" not in download.text
    assert_hardened(dict(page.headers), "410")
    # The certificate is what verifiers are pointed at (Cred_URL): it does not expire.
    assert certificate.status_code == 200
