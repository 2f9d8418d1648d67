"""Which IP addresses are globally routable: IANA's special-purpose registries, as two tables.

A webhook may be sent only to an address on the public internet. Python's ``is_global``
cannot decide that alone: its table is as old as the Python that runs it (older ones miss
the IPv6 documentation prefix 3fff::/20, the SRv6 prefix 5f00::/16, local-use NAT64 and more)
and it does not look at the IPv4 address inside NAT64, SIIT, 6to4 or Teredo forms. So the
rules are written out here, one row per range with the document that reserves it:

* every entry of IANA's IPv4 and IPv6 Special-Purpose Address Registries is refused but
  IPv4-mapped (below), including the few the registries mark globally reachable (anycast
  relays, AS112 sinks, protocol identifiers): each is a service or a label, never a webhook
  receiver;
* also refused: multicast, and the forms the registries no longer list but stacks still
  parse (IPv4-compatible, SIIT's IPv4-translated, site-local);
* IPv6 outside 2000::/3 is refused whatever it is: global unicast is allocated from there
  only, so anything else is reserved, special or unallocated;
* Python's ``is_global`` is asked last, as a safety net that can only refuse more.

IPv6 forms that carry an IPv4 address (NAT64, SIIT, IPv4-compatible, 6to4, Teredo) are
refused outright, whatever they embed; the refusal names the embedded address where the form
says where it sits. Checking the embedded address and letting global ones through would mean
trusting a translator or relay, possibly one inside the provider's network, to go exactly
where the address says; local-use NAT64 (RFC 8215) lets the operator choose where the IPv4
address sits, so no check could read it. No receiver needs these forms: an IPv4 receiver is
reached at its IPv4 address. (An IPv6-only cluster reaching IPv4 receivers through DNS64
would need the well-known prefix 64:ff9b::/96 allowed, with its embedded address checked,
here and in the dispatchers' NetworkPolicy, which admits IPv6 in 2000::/3 only.)

The exception is IPv4-mapped ``::ffff:a.b.c.d``: it is not an IPv6 destination but the
socket API's spelling of an IPv4 one, so it is judged as that IPv4 address (and the
dispatcher connects to that IPv4 address).

What no table can catch: a network-specific NAT64 prefix (RFC 6052), which an operator picks
inside 2000::/3, looks like any global address. A network that runs one must keep its
translator from reaching its own private addresses; nothing here can tell.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Range:
    """A refused range: what it is and the document that reserves it.

    ``embedded`` reads the IPv4 address an IPv6 form carries, for the refusal's message.
    """

    network: IPNetwork
    name: str
    reference: str
    embedded: Callable[[ipaddress.IPv6Address], ipaddress.IPv4Address] | None = None


def _low32(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)


def _sixtofour(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF)


def _teredo_client(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    # The client's address is stored with every bit inverted (RFC 4380 section 4).
    return ipaddress.IPv4Address(~int(address) & 0xFFFFFFFF)


def _range(
    net: str,
    name: str,
    reference: str,
    embedded: Callable[[ipaddress.IPv6Address], ipaddress.IPv4Address] | None = None,
) -> Range:
    return Range(ipaddress.ip_network(net), name, reference, embedded)


IPV4_RANGES: tuple[Range, ...] = (
    _range("0.0.0.0/8", '"this network"; 0.0.0.0 reaches the host itself', "RFC 791"),
    _range("10.0.0.0/8", "private use", "RFC 1918"),
    _range("100.64.0.0/10", "shared address space, carrier-grade NAT", "RFC 6598"),
    _range("127.0.0.0/8", "loopback", "RFC 1122"),
    _range("169.254.0.0/16", "link-local, the cloud metadata service", "RFC 3927"),
    _range("172.16.0.0/12", "private use", "RFC 1918"),
    # DS-Lite, PCP and TURN anycast, NAT64 discovery: services of the network, not receivers.
    _range("192.0.0.0/24", "IETF protocol assignments", "RFC 6890"),
    _range("192.0.2.0/24", "documentation TEST-NET-1", "RFC 5737"),
    _range("192.31.196.0/24", "AS112 DNS sink", "RFC 7535"),
    _range("192.52.193.0/24", "AMT relay anycast", "RFC 7450"),
    _range("192.88.99.0/24", "deprecated 6to4 relay anycast", "RFC 7526"),
    _range("192.168.0.0/16", "private use", "RFC 1918"),
    _range("192.175.48.0/24", "direct delegation AS112 DNS sink", "RFC 7534"),
    _range("198.18.0.0/15", "benchmarking", "RFC 2544"),
    _range("198.51.100.0/24", "documentation TEST-NET-2", "RFC 5737"),
    _range("203.0.113.0/24", "documentation TEST-NET-3", "RFC 5737"),
    _range("224.0.0.0/4", "multicast", "RFC 5771"),
    _range("240.0.0.0/4", "reserved", "RFC 1112"),
    _range("255.255.255.255/32", "limited broadcast", "RFC 919"),
)

IPV6_RANGES: tuple[Range, ...] = (
    _range("::/128", "unspecified", "RFC 4291"),
    _range("::1/128", "loopback", "RFC 4291"),
    _range("::/96", "deprecated IPv4-compatible", "RFC 4291 section 2.5.5.1", _low32),
    _range("::ffff:0:0:0/96", "SIIT IPv4-translated", "RFC 2765", _low32),
    _range("64:ff9b::/96", "well-known NAT64 prefix", "RFC 6052", _low32),
    _range("64:ff9b:1::/48", "local-use NAT64 prefix", "RFC 8215"),
    _range("100::/64", "discard-only", "RFC 6666"),
    # Teredo, benchmarking, ORCHID, PCP/TURN anycast, AMT, AS112, drone IDs.
    _range("2001::/23", "IETF protocol assignments", "RFC 2928"),
    _range("2001::/32", "Teredo tunnel", "RFC 4380", _teredo_client),
    _range("2001:db8::/32", "documentation", "RFC 3849"),
    _range("2002::/16", "6to4 tunnel", "RFC 3056", _sixtofour),
    _range("2620:4f:8000::/48", "direct delegation AS112 DNS sink", "RFC 7534"),
    _range("3fff::/20", "documentation", "RFC 9637"),
    _range("5f00::/16", "segment routing (SRv6) SIDs", "RFC 9602"),
    _range("fc00::/7", "unique-local, AWS's metadata service fd00:ec2::254", "RFC 4193"),
    _range("fe80::/10", "link-local", "RFC 4291"),
    _range("fec0::/10", "deprecated site-local", "RFC 3879"),
    _range("ff00::/8", "multicast", "RFC 4291"),
)

GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
"""Where IANA allocates global unicast from (RFC 3587); the rest of IPv6 is not global."""


def _most_specific(address: IPAddress) -> Range | None:
    table = IPV4_RANGES if address.version == 4 else IPV6_RANGES
    found = [entry for entry in table if address in entry.network]
    return max(found, key=lambda entry: entry.network.prefixlen, default=None)


def refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not globally routable, or None when it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        problem = refusal(address.ipv4_mapped)
        return None if problem is None else f"{address} is IPv4-mapped: {problem}"
    entry = _most_specific(address)
    if entry is not None:
        problem = f"{address} is in the non-public range {entry.network}, {entry.name}"
        if entry.embedded is not None and isinstance(address, ipaddress.IPv6Address):
            problem += f", embedding {entry.embedded(address)}"
        return f"{problem} ({entry.reference})"
    if address.version == 6 and address not in GLOBAL_UNICAST:
        return f"{address} is not global unicast: only {GLOBAL_UNICAST} is (RFC 3587)"
    if not address.is_global:
        return f"{address} is not a public address"
    return None
