"""Globally routable or not: one row per special-purpose range, and every IPv4 embedding."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credbatch.webhooks.special_purpose import IPV4_RANGES, IPV6_RANGES, refusal

# (address inside the range, the range its refusal names, or None: it must pass)
TABLE: list[tuple[str, str | None]] = [
    # IPv4
    ("0.0.0.0", "0.0.0.0/8"),  # RFC 791: "this network"; 0.0.0.0 is the host itself
    ("0.1.2.3", "0.0.0.0/8"),  # RFC 791
    ("10.1.2.3", "10.0.0.0/8"),  # RFC 1918 private use
    ("100.64.0.1", "100.64.0.0/10"),  # RFC 6598 shared address space (CGNAT)
    ("127.0.0.1", "127.0.0.0/8"),  # RFC 1122 loopback
    ("169.254.169.254", "169.254.0.0/16"),  # RFC 3927 link-local: the metadata service
    ("172.31.255.254", "172.16.0.0/12"),  # RFC 1918 private use
    ("192.0.0.9", "192.0.0.0/24"),  # RFC 6890 IETF protocol assignments (PCP anycast)
    ("192.0.2.1", "192.0.2.0/24"),  # RFC 5737 TEST-NET-1
    ("192.31.196.1", "192.31.196.0/24"),  # RFC 7535 AS112-v4
    ("192.52.193.1", "192.52.193.0/24"),  # RFC 7450 AMT
    ("192.88.99.1", "192.88.99.0/24"),  # RFC 7526 deprecated 6to4 relay anycast
    ("192.168.1.1", "192.168.0.0/16"),  # RFC 1918 private use
    ("192.175.48.1", "192.175.48.0/24"),  # RFC 7534 direct delegation AS112
    ("198.19.255.1", "198.18.0.0/15"),  # RFC 2544 benchmarking
    ("198.51.100.7", "198.51.100.0/24"),  # RFC 5737 TEST-NET-2
    ("203.0.113.7", "203.0.113.0/24"),  # RFC 5737 TEST-NET-3
    ("239.255.255.250", "224.0.0.0/4"),  # RFC 5771 multicast
    ("240.0.0.1", "240.0.0.0/4"),  # RFC 1112 reserved
    ("255.255.255.255", "255.255.255.255/32"),  # RFC 919 limited broadcast
    # IPv6
    ("::", "::/128"),  # RFC 4291 unspecified
    ("::1", "::1/128"),  # RFC 4291 loopback
    ("::a9fe:a9fe", "::/96"),  # RFC 4291 2.5.5.1 IPv4-compatible 169.254.169.254
    ("::7f00:1", "::/96"),  # RFC 4291 2.5.5.1 IPv4-compatible 127.0.0.1
    ("::ffff:a9fe:a9fe", "169.254.0.0/16"),  # RFC 4291 2.5.5.2 IPv4-mapped: judged as IPv4
    ("::ffff:0:a9fe:a9fe", "::ffff:0:0:0/96"),  # RFC 2765 SIIT IPv4-translated
    ("64:ff9b::a9fe:a9fe", "64:ff9b::/96"),  # RFC 6052 well-known NAT64
    ("64:ff9b::808:808", "64:ff9b::/96"),  # RFC 6052: refused even for a global IPv4
    ("64:ff9b:1::a9fe:a9fe", "64:ff9b:1::/48"),  # RFC 8215 local-use NAT64
    ("100::1", "100::/64"),  # RFC 6666 discard-only
    ("2001:2::1", "2001::/23"),  # RFC 2928 IETF protocol assignments (RFC 5180 benchmarking)
    ("2001:20::1", "2001::/23"),  # RFC 2928 (RFC 7343 ORCHIDv2)
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32"),  # RFC 4380 Teredo
    ("2001:db8::1", "2001:db8::/32"),  # RFC 3849 documentation
    ("2002:a9fe:a9fe::1", "2002::/16"),  # RFC 3056 6to4
    ("2620:4f:8000::1", "2620:4f:8000::/48"),  # RFC 7534 direct delegation AS112
    ("3fff::1", "3fff::/20"),  # RFC 9637 documentation
    ("5f00::1", "5f00::/16"),  # RFC 9602 SRv6 SIDs
    ("fd00:ec2::254", "fc00::/7"),  # RFC 4193 unique-local: AWS's metadata service
    ("fe80::1", "fe80::/10"),  # RFC 4291 link-local
    ("fec0::1", "fec0::/10"),  # RFC 3879 deprecated site-local
    ("ff02::1", "ff00::/8"),  # RFC 4291 multicast
    ("4000::1", "2000::/3"),  # RFC 3587: unallocated, global unicast is 2000::/3 only
    ("e000::1", "2000::/3"),  # RFC 3587
    ("1::1", "2000::/3"),  # RFC 3587
    # Globally routable: must pass
    ("1.1.1.1", None),
    ("8.8.8.8", None),
    ("93.184.215.14", None),
    ("::ffff:8.8.8.8", None),  # IPv4-mapped: connected to as 8.8.8.8
    ("2606:4700:4700::1111", None),
    ("2001:4860:4860::8888", None),  # 2001:4860::/32 is an allocation, not 2001::/23
    ("2620:fe::fe", None),  # beside, not inside, 2620:4f:8000::/48
    ("2a00:1450:4001:80b::200e", None),
]


@pytest.mark.parametrize(("text", "named"), TABLE, ids=[row[0] for row in TABLE])
def test_each_range(text: str, named: str | None) -> None:
    problem = refusal(ipaddress.ip_address(text))
    if named is None:
        assert problem is None
    else:
        assert problem is not None and named in problem, problem


def test_the_table_has_a_row_for_every_range_refused() -> None:
    ranges = [str(entry.network) for entry in (*IPV4_RANGES, *IPV6_RANGES)]
    covered = {named for _, named in TABLE}
    assert [net for net in ranges if net not in covered] == []


# Every way an IPv6 address carries an IPv4 one; the integer is filler for the other bits.
Embed = Callable[[ipaddress.IPv4Address, int], ipaddress.IPv6Address]


def _v6(value: int) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(value)


def _local_use_nat64(v4: ipaddress.IPv4Address, bits: int) -> ipaddress.IPv6Address:
    # RFC 6052 section 2.2: the operator extends 64:ff9b:1::/48 to a /48, /56, /64 or /96
    # prefix; the IPv4 address follows it, skipping bits 64-71 (the "u" octet, zero).
    length = (48, 56, 64, 96)[bits % 4]
    operator = (bits >> 2) & ((1 << (length - 48)) - 1)
    prefix = int(ipaddress.IPv6Address("64:ff9b:1::")) | operator << (128 - length)
    a = int(v4)
    if length == 96:
        embedded = a
    else:
        after_u = 32 - (64 - length)  # IPv4 bits that follow the u octet
        embedded = (a >> after_u) << 64 | (a & ((1 << after_u) - 1)) << (56 - after_u)
    return _v6(prefix & ~(0xFF << 56) | embedded)


EMBEDDINGS: dict[str, Embed] = {
    "IPv4-mapped": lambda v4, _: _v6(0xFFFF << 32 | int(v4)),
    "IPv4-compatible": lambda v4, _: _v6(int(v4)),
    "SIIT": lambda v4, _: _v6(0xFFFF << 48 | int(v4)),
    "NAT64 well-known": lambda v4, _: _v6(0x64FF9B << 96 | int(v4)),
    "NAT64 local-use": _local_use_nat64,
    "6to4": lambda v4, bits: _v6(0x2002 << 112 | int(v4) << 80 | bits & ((1 << 80) - 1)),
    "Teredo": lambda v4, bits: _v6(
        0x20010000 << 96 | (bits & ((1 << 64) - 1)) << 32 | (~int(v4) & 0xFFFFFFFF)
    ),
}

_UNSPECIFIED_AND_LOOPBACK = (ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1"))
ipv4s = st.integers(min_value=0, max_value=2**32 - 1).map(ipaddress.IPv4Address)
non_global_ipv4s = st.sampled_from(IPV4_RANGES).flatmap(
    lambda entry: st.integers(
        int(entry.network.network_address), int(entry.network.broadcast_address)
    ).map(ipaddress.IPv4Address)
)


@given(
    non_global_ipv4s | ipv4s.filter(lambda a: not a.is_global),
    st.sampled_from(sorted(EMBEDDINGS)),
    st.integers(min_value=0, max_value=2**128 - 1),
)
def test_an_embedded_non_global_ipv4_is_refused_in_every_form(
    v4: ipaddress.IPv4Address, form: str, bits: int
) -> None:
    address = EMBEDDINGS[form](v4, bits)
    problem = refusal(address)
    assert problem is not None, address
    # The refusal names the embedded address, except where the operator picks the layout
    # (local-use NAT64) and where the address is also :: or ::1 (named as those).
    if form != "NAT64 local-use" and address not in _UNSPECIFIED_AND_LOOPBACK:
        assert str(v4) in problem, problem


@given(ipv4s, st.sampled_from(sorted(EMBEDDINGS)), st.integers(0, 2**128 - 1))
def test_only_the_ipv4_mapped_form_may_pass_and_then_as_its_ipv4(
    v4: ipaddress.IPv4Address, form: str, bits: int
) -> None:
    address = EMBEDDINGS[form](v4, bits)
    passes = refusal(address) is None
    assert passes == (form == "IPv4-mapped" and refusal(v4) is None), address
