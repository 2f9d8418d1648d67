"""Who the client of a public request is: the one place that decides, before anything uses it.

The direct peer is the client unless it is one of the operator's trusted proxies
(``CREDBATCH_TRUSTED_PROXIES``). Only then is ``X-Forwarded-For`` read, from the right: each
proxy appends the address it received the request from, so the entries right of the first
untrusted one were written by proxies we trust, and that first untrusted entry is the address
the outermost trusted proxy saw. Everything left of it came from the client and may be
anything, so it is never looked at; a client cannot choose its rate-limit bucket by sending
the header itself, directly or through the proxy.

Only ``X-Forwarded-For`` is read, not RFC 7239 ``Forwarded``: a proxy appends to one of them
and passes the other on from the client untouched, so believing both would let a client
write the one its proxy ignores. Configure the proxy to set ``X-Forwarded-For`` (nginx,
Envoy, HAProxy, the cloud load balancers all can).

uvicorn's own proxy-header handling is off (``main``): it would trust 127.0.0.1 by default
and rewrite the peer before this runs. The decided address replaces ``scope["client"]``, so
the rate limit, ``request.client`` and any log see the same client.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address

from starlette.types import ASGIApp, Receive, Scope, Send

from credbatch.env_values import Network

Address = IPv4Address | IPv6Address

_HEADER = b"x-forwarded-for"
# A chain longer than this is not one a real deployment builds; the rest is not read.
_MAX_HOPS = 32


def parse_address(text: str) -> Address | None:
    """An address as proxies write it: bare, ``v4:port``, ``[v6]`` or ``[v6]:port``;
    IPv4-mapped IPv6 as IPv4. None when it is not an address (``unknown``, garbage)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwarded_chain(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """The ``X-Forwarded-For`` entries, left to right; repeated header lines join in order."""
    entries: list[str] = []
    for name, value in headers:
        if name.lower() == _HEADER:
            entries.extend(value.decode("latin-1").split(","))
    return entries


def decide_client(peer: str, chain: Sequence[str], trusted: Sequence[Network]) -> str:
    """The client's address, by the right-to-left walk above; ``peer`` when it is not a
    trusted proxy. A trusted proxy that wrote no usable address leaves the last trusted hop
    as the client (its clients then share one bucket rather than name their own)."""
    current = parse_address(peer)
    if current is None:
        return peer
    for entry in reversed(chain[-_MAX_HOPS:]):
        if not _is_trusted(current, trusted):
            break
        previous = parse_address(entry)
        if previous is None:
            break
        current = previous
    return str(current)


def _is_trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


class ClientAddress:
    """ASGI middleware putting the decided client address into ``scope["client"]``."""

    def __init__(self, app: ASGIApp, trusted: Sequence[Network]) -> None:
        self._app = app
        self._trusted = tuple(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._trusted:
            client = scope.get("client")
            if client:
                chain = forwarded_chain(scope.get("headers", ()))
                decided = decide_client(client[0], chain, self._trusted)
                if decided != client[0]:
                    # The port was the proxy's; the client's is unknown.
                    scope["client"] = (decided, 0)
        await self._app(scope, receive, send)
