"""Per-client rate limiting of the public endpoints: a token bucket per client network.

Each client may make ``burst`` requests at once and ``rate`` per second on average; beyond
that it gets 429 with ``Retry-After`` (whole seconds until a request would pass), which caps
how fast one client can probe claim tokens or load the database. The client is the address
``client_address`` decided; an IPv6 client is its /64, the smallest network a provider gives
one subscriber (RFC 6177), so it cannot take a fresh bucket per address of its own prefix.
Buckets live in this process's memory (each replica limits on its own), and at most
``max_clients`` are kept: the least recently seen is forgotten first, which at worst gives a
forgotten client a full bucket.

The token endpoint also spends a bucket per pre-authorized code (``CODE_BURST``,
``CODE_RATE``), so the attempts on one offer stay few however many addresses they come from.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from ipaddress import IPv6Address, ip_address

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.public.errors import error_response


class TokenBuckets:
    """Token buckets keyed by client, refilled continuously at ``rate`` tokens per second."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1 or max_clients < 1:
            raise ValueError("rate must be positive, burst and max_clients at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._max_clients = max_clients
        self._clock = clock
        # client -> (tokens, time of last update); ordered from least to most recently seen.
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> float:
        """Take one token; returns 0 when allowed, else the seconds until one is available."""
        now = self._clock()
        tokens, last = self._buckets.pop(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self._rate
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
        return wait


# Exchanges of one pre-authorized code: ten at once, then five a minute. A wallet needs one
# (a few when its holder mistypes the transaction code, of which five wrong ones spend the
# offer anyway).
CODE_BURST = 10
CODE_RATE = 5 / 60


def bucket_of(client: str) -> str:
    """The bucket of a client address: itself for IPv4 (IPv4-mapped IPv6 included), its /64
    for IPv6; anything else (a Unix socket's empty peer) as it is."""
    try:
        address = ip_address(client.strip("[]"))
    except ValueError:
        return client
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return f"{IPv6Address(int(address) >> 64 << 64)}/64"
    return str(address)


def retry_after(wait: float) -> str:
    """``Retry-After`` for a wait in seconds: whole seconds, at least one."""
    return str(max(1, math.ceil(wait)))


def slow_down(wait: float) -> Response:
    """The token endpoint's answer to one code tried too often (OAuth error JSON)."""
    return JSONResponse(
        {
            "error": "slow_down",
            "error_description": "Too many attempts with this pre-authorized code;"
            " retry after the Retry-After delay",
        },
        status_code=429,
        headers={"Retry-After": retry_after(wait)},
    )


class RateLimit:
    """ASGI middleware answering 429 with Retry-After to a client over its budget.

    Paths in ``exempt`` are not counted: callbacks that prove their sender with a signature
    and arrive at the rate of the sender's traffic, not of one person's requests.
    """

    def __init__(
        self, app: ASGIApp, buckets: TokenBuckets, exempt: frozenset[str] = frozenset()
    ) -> None:
        self._app = app
        self._buckets = buckets
        self._exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self._exempt:
            await self._app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self._buckets.take(bucket_of(client[0]) if client else "")
        if wait > 0:
            response = error_response(
                "rate_limited",
                "Too many requests from this client; retry after the Retry-After delay",
                429,
                **{"Retry-After": retry_after(wait)},
            )
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)
