"""Rate limits that hold behind a proxy: who the client is, its bucket, and the per-code limit.

The HTTP tests run the public application in uvicorn with the public process's own server
configuration (``services.public.main.server_config``) and talk to it over real sockets from
127.0.0.1, which is the direct peer: trusted or not depending on the test's
``CREDBATCH_TRUSTED_PROXIES``. ``X-Forwarded-For`` is whatever a client or a proxy in front
would send.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from ipaddress import IPv4Address, IPv4Network, IPv6Network
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn
from hypothesis import given
from hypothesis import strategies as st

from credbatch.config import ConfigError, Settings, load_settings
from credbatch.env_values import Network
from services.public.app import create_app
from services.public.client_address import decide_client, parse_address
from services.public.main import server_config
from services.public.ratelimit import CODE_BURST, CODE_RATE, TokenBuckets, bucket_of

PRE_AUTHORIZED = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
# A path no route serves: its 404 costs no database call, the limit runs before routing.
PROBE = "/no/such/route"


def networks(value: str) -> tuple[Network, ...]:
    return load_settings({"CREDBATCH_TRUSTED_PROXIES": value}).trusted_proxies


@asynccontextmanager
async def serving(
    pool: asyncpg.Pool, trusted: str, *, rate: float = 0.01, burst: int = 3
) -> AsyncIterator[httpx.AsyncClient]:
    """The public application in uvicorn on 127.0.0.1 (port 0), and a client of it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(pool, url, rate=rate, burst=burst, trusted_proxies=networks(trusted))
    server = uvicorn.Server(server_config(app, Settings()))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            yield client
    finally:
        server.should_exit = True
        await task


async def probe(client: httpx.AsyncClient, forwarded_for: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    return (await client.get(PROBE, headers=headers)).status_code


@pytest.mark.parametrize("trusted", ["", "10.0.0.0/8, 2001:db8::/32"])
async def test_rotating_x_forwarded_for_from_an_untrusted_peer_stays_in_the_peer_s_bucket(
    public_pool: asyncpg.Pool, trusted: str
) -> None:
    # No trusted proxy, or none that is the peer: uvicorn trusts 127.0.0.1 by default, and
    # would hand every rotated header its own bucket were its proxy handling on.
    async with serving(public_pool, trusted, burst=3) as client:
        statuses = [await probe(client, f"198.51.100.{i}") for i in range(3)]
        assert statuses == [404, 404, 404]
        limited = await client.get(PROBE, headers={"X-Forwarded-For": "203.0.113.77"})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert await probe(client) == 429
        assert await probe(client, "10.0.0.1, 2001:db8::1") == 429


async def test_behind_a_trusted_proxy_each_client_has_its_own_bucket_and_spoofing_fails(
    public_pool: asyncpg.Pool,
) -> None:
    # The peer (127.0.0.1) is the ingress; 10.0.0.0/8 holds a proxy behind it.
    async with serving(public_pool, "127.0.0.1/32, 10.0.0.0/8", burst=2) as client:
        assert [await probe(client, "198.51.100.7") for _ in range(2)] == [404, 404]
        assert await probe(client, "198.51.100.7") == 429
        # Another holder behind the same ingress has a bucket of its own.
        assert await probe(client, "198.51.100.8") == 404
        # The over-budget client writes its own entries left of the one the ingress
        # appended (its real address): they are never read, trusted-looking ones included.
        for spoofed in ("203.0.113.1", "10.9.9.9", "unknown", "192.0.2.1, 10.0.0.2"):
            assert await probe(client, f"{spoofed}, 198.51.100.7") == 429, spoofed
        # Through a second trusted hop the client is still the first untrusted entry.
        assert await probe(client, "203.0.113.99, 198.51.100.7, 10.1.2.3") == 429
        assert await probe(client, "203.0.113.99, 198.51.100.9, 10.1.2.3") == 404
        # The same header split over two lines is one list, in order.
        split = [("X-Forwarded-For", "203.0.113.5"), ("X-Forwarded-For", "198.51.100.7")]
        assert (await client.get(PROBE, headers=split)).status_code == 429
        # RFC 7239 Forwarded is not read: the ingress's peer address is the client.
        forwarded = {"Forwarded": "for=198.51.100.50"}
        assert [(await client.get(PROBE, headers=forwarded)).status_code for _ in range(3)] == [
            404,
            404,
            429,
        ]


async def test_ipv6_clients_share_a_bucket_per_64_and_mapped_ipv4_is_ipv4(
    public_pool: asyncpg.Pool,
) -> None:
    async with serving(public_pool, "127.0.0.1/32", burst=2) as client:
        assert await probe(client, "2001:db8:1:2::1") == 404
        assert await probe(client, "[2001:db8:1:2:ffff:ffff:ffff:9]:443") == 404
        # Another address of the same /64: the same, spent bucket.
        assert await probe(client, "2001:db8:1:2:abcd::1") == 429
        # The neighbouring /64s are other subscribers.
        assert await probe(client, "2001:db8:1:3::1") == 404
        assert await probe(client, "2001:db8:1:1:ffff:ffff:ffff:ffff") == 404
        # An IPv4-mapped IPv6 address is its IPv4 client.
        assert await probe(client, "::ffff:198.51.100.20") == 404
        assert await probe(client, "198.51.100.20:5555") == 404
        assert await probe(client, "198.51.100.20") == 429


async def test_a_pre_authorized_code_is_limited_whatever_address_tries_it(
    public_pool: asyncpg.Pool,
) -> None:
    tenant = uuid.uuid4()
    path = f"/tenants/{tenant}/token"

    async def exchange(client: httpx.AsyncClient, code: str, address: str) -> httpx.Response:
        form = {"grant_type": PRE_AUTHORIZED, "pre-authorized_code": code, "tx_code": "000000"}
        return await client.post(path, data=form, headers={"X-Forwarded-For": address})

    async with serving(public_pool, "127.0.0.1/32", rate=1000.0, burst=1000) as client:
        code = "guessed-or-leaked-code"
        for i in range(CODE_BURST):
            refused = await exchange(client, code, f"198.51.100.{i}")
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        limited = await exchange(client, code, "203.0.113.200")
        # Another code of the same tenant, from an address that just got 429, and the same
        # code at another tenant are other offers.
        other = await exchange(client, "another-code", "203.0.113.200")
        elsewhere = await client.post(
            f"/tenants/{uuid.uuid4()}/token",
            data={"grant_type": PRE_AUTHORIZED, "pre-authorized_code": code},
        )
    assert limited.status_code == 429
    assert limited.json()["error"] == "slow_down" and limited.json()["error_description"]
    assert 1 <= int(limited.headers["retry-after"]) <= math.ceil(1 / CODE_RATE)
    assert other.status_code == 400 and other.json()["error"] == "invalid_grant"
    assert elsewhere.status_code == 400 and elsewhere.json()["error"] == "invalid_grant"


def test_trusted_proxies_are_read_as_networks_and_a_bad_entry_is_named() -> None:
    assert networks("") == () and load_settings({}).trusted_proxies == ()
    assert networks(" 10.0.0.0/8, 2001:db8::/32,192.0.2.1 ,, ::ffff:10.1.0.0/112") == (
        IPv4Network("10.0.0.0/8"),
        IPv6Network("2001:db8::/32"),
        IPv4Network("192.0.2.1/32"),
        IPv4Network("10.1.0.0/16"),
    )
    for value, named in (
        ("10.0.0.0/8, 10.0.0.300/24", r"entry 2 \('10.0.0.300/24'\)"),
        ("10.0.0.1/8", r"entry 1 \('10.0.0.1/8'\).*host bits set \(did you mean 10.0.0.0/8\?\)"),
        ("10.0.0.0/8;192.0.2.0/24", r"entry 1 \('10.0.0.0/8;192.0.2.0/24'\)"),
        ("*", r"entry 1 \('\*'\)"),
    ):
        with pytest.raises(ConfigError, match=f"CREDBATCH_TRUSTED_PROXIES: {named}"):
            networks(value)


@pytest.mark.integration
def test_the_public_process_refuses_to_start_with_a_bad_entry(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CREDBATCH_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.0/33",
        # Development mode would make up keys here before reading the setting.
        "CREDBATCH_KEK_FILE": str(tmp_path / "kek"),
        "CREDBATCH_WEBHOOK_KEK_FILE": str(tmp_path / "webhook-kek"),
    }
    started = subprocess.run(
        [sys.executable, "-m", "services.public"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 2, started.stderr
    assert "CREDBATCH_TRUSTED_PROXIES: entry 2 ('192.0.2.0/33')" in started.stderr


def test_the_client_is_the_first_untrusted_address_from_the_right() -> None:
    trusted = networks("10.0.0.0/8, 2001:db8:ffff::/48")
    assert decide_client("198.51.100.1", ["203.0.113.1"], trusted) == "198.51.100.1"
    assert decide_client("10.0.0.1", [], trusted) == "10.0.0.1"
    assert decide_client("10.0.0.1", ["192.0.2.1", "198.51.100.1"], trusted) == "198.51.100.1"
    assert decide_client("2001:db8:ffff::1", ["[2001:db8::5]:443"], trusted) == "2001:db8::5"
    # Every hop trusted: the left-most entry is the client.
    assert decide_client("10.0.0.1", ["10.0.0.2", "10.0.0.3"], trusted) == "10.0.0.2"
    # A trusted proxy that wrote no address: its own address is the client, not a guess.
    assert decide_client("10.0.0.1", ["192.0.2.1", "unknown"], trusted) == "10.0.0.1"
    assert decide_client("::ffff:10.0.0.1", ["198.51.100.1"], trusted) == "198.51.100.1"


_ANY_ENTRY = st.one_of(
    st.ip_addresses().map(str), st.text(max_size=20), st.just("10.0.0.1"), st.just("unknown")
)


@given(
    client=st.ip_addresses(v=4).filter(lambda a: a not in IPv4Network("10.0.0.0/8")),
    written_by_client=st.lists(_ANY_ENTRY, max_size=6),
    hops=st.lists(st.integers(1, 2**24 - 2), max_size=4),
)
def test_nothing_the_client_writes_changes_who_it_is(
    client: IPv4Address, written_by_client: Sequence[str], hops: Sequence[int]
) -> None:
    """Whatever the header held when it reached the first trusted proxy, that proxy appended
    the client's address and each trusted hop after it its predecessor's."""
    trusted = networks("10.0.0.0/8")
    proxies = [str(IPv4Address(int(IPv4Address("10.0.0.0")) + hop)) for hop in hops]
    chain = [*written_by_client, str(client), *proxies]
    peer = "10.255.255.254"
    assert decide_client(peer, chain, trusted) == str(client)
    assert decide_client(str(client), chain, trusted) == str(client)


def test_buckets_group_ipv6_by_64_and_keep_ipv4_and_others_as_they_are() -> None:
    assert bucket_of("2001:db8:1:2:3:4:5:6") == bucket_of("2001:db8:1:2::") == "2001:db8:1:2::/64"
    assert bucket_of("2001:db8:1:3::") != bucket_of("2001:db8:1:2::")
    assert bucket_of("::ffff:192.0.2.1") == bucket_of("192.0.2.1") == "192.0.2.1"
    assert bucket_of("") == "" and bucket_of("testclient") == "testclient"
    assert parse_address("garbage:1:2") is None


def test_buckets_are_bounded_by_forgetting_the_least_recently_seen() -> None:
    now = [0.0]
    buckets = TokenBuckets(0.001, 1, max_clients=2, clock=lambda: now[0])
    assert buckets.take("a") == 0 and buckets.take("a") > 0
    buckets.take("b")
    assert buckets.take("a") > 0  # still remembered: two clients fit
    buckets.take("c")
    buckets.take("d")
    # "a" was pushed out by two newer clients: forgotten, it starts with a full bucket.
    assert buckets.take("a") == 0
