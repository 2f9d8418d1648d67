"""Where webhooks may be sent: the defence against server-side request forgery.

An endpoint URL is chosen by a tenant, so without these rules a tenant could make credbatch's
network position reach what only credbatch should: the cloud metadata service (credentials),
databases and admin panels on private networks, or services on the host itself. So:

* production accepts only ``https`` URLs whose every resolved address is globally routable
  (``credbatch.webhooks.special_purpose``): loopback, private, link-local (which holds the
  metadata service 169.254.169.254), carrier-grade NAT, multicast, IPv6 unique-local (which
  holds AWS's fd00:ec2::254), every other special-purpose range, IPv6 outside 2000::/3 and
  every IPv6 form that carries an IPv4 address (NAT64, 6to4, Teredo, ...) are refused;
* the name is resolved once per delivery and the connection goes to the address that was
  checked (the name travels only in the Host header and TLS SNI), so a DNS answer that
  changes between the check and the connection (rebinding) cannot redirect it;
* every delivery checks again: a name that pointed at a public address at creation and at a
  private one later is refused then;
* redirects are never followed (a 3xx is a failed attempt), so a public endpoint cannot
  bounce the request to a private one;
* development also allows loopback, over http or https, for a receiver on the same machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from credbatch.webhooks.special_purpose import IPAddress, refusal

_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class AddressRefused(Exception):
    """The URL or an address it resolves to may not be sent to; the message says why."""


class NameNotResolved(AddressRefused):
    """The host name resolves to no address (now: DNS may answer later)."""


@dataclass(frozen=True)
class Target:
    """A checked URL: connect to ``address``, name ``host`` in the Host header and SNI."""

    scheme: str
    host: str
    port: int
    address: IPAddress
    path: str

    def connect_url(self) -> str:
        """The URL with the checked address in place of the name."""
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.scheme}://{literal}:{self.port}{self.path}"

    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback(address: IPAddress) -> bool:
    address = _unmapped(address)
    return any(address in net for net in _LOOPBACK if net.version == address.version)


def address_problem(address: IPAddress, *, allow_loopback: bool) -> str | None:
    """Why ``address`` may not be sent to, or None when it may."""
    address = _unmapped(address)
    if allow_loopback and is_loopback(address):
        return None
    return refusal(address)


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    host: str
    port: int
    path: str


def parse_url(url: str, *, development: bool) -> ParsedUrl:
    """Check the URL's form: https (or, in development, http), a host, no credentials.

    Raises:
        AddressRefused: the URL is malformed or uses a scheme that is not allowed.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise AddressRefused(f"not a valid URL: {error}") from None
    if parts.scheme not in ("https", "http"):
        raise AddressRefused("the URL must start with https://")
    if not parts.hostname:
        raise AddressRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise AddressRefused("the URL must not carry a user name or password")
    if parts.scheme == "http" and not development:
        raise AddressRefused("the URL must start with https://")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default = 443 if parts.scheme == "https" else 80
    return ParsedUrl(parts.scheme, parts.hostname, port or default, path)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (a literal resolves to itself)."""
    literal = _literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise NameNotResolved(f"{host} does not resolve: {error.strerror}") from None
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise NameNotResolved(f"{host} resolves to no address")
    return found


async def check_target(url: str, *, development: bool) -> Target:
    """Resolve ``url``'s host once and check every address; the first is the one to use.

    Every address must pass, not just the one used: a name answering with one public and one
    private address is a rebinding attempt, or a misconfiguration, either way refused.

    Raises:
        AddressRefused: the URL's form, or any address it resolves to, is not allowed.
    """
    parsed = parse_url(url, development=development)
    addresses = await resolve(parsed.host, parsed.port)
    for address in addresses:
        problem = address_problem(address, allow_loopback=development)
        if problem is not None:
            raise AddressRefused(f"{parsed.host}: {problem}")
    if parsed.scheme == "http" and not all(is_loopback(a) for a in addresses):
        raise AddressRefused("http is allowed only to loopback, in development")
    return Target(parsed.scheme, parsed.host, parsed.port, _unmapped(addresses[0]), parsed.path)
