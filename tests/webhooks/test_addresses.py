"""The address rules against server-side request forgery, range by range."""

from __future__ import annotations

import ipaddress

import pytest

from credbatch.webhooks.addresses import (
    AddressRefused,
    address_problem,
    check_target,
    parse_url,
)

REFUSED = {
    "loopback": ["127.0.0.1", "127.255.0.9", "::1"],
    "this network": ["0.0.0.0", "0.1.2.3"],
    "private": ["10.0.0.1", "172.16.0.1", "172.31.255.254", "192.168.1.1"],
    "link-local": ["169.254.1.1", "fe80::1"],
    "metadata": ["169.254.169.254", "fd00:ec2::254"],
    "carrier-grade NAT": ["100.64.0.1", "100.127.255.254"],
    "multicast": ["224.0.0.1", "239.255.255.250", "ff02::1"],
    "IPv6 unique-local": ["fc00::1", "fd12:3456::1"],
    "IPv4-mapped private": ["::ffff:10.0.0.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254"],
    "NAT64 of anything": ["64:ff9b::a00:1"],
    "reserved and benchmarking": ["240.0.0.1", "255.255.255.255", "198.18.0.1", "192.0.0.8"],
    "documentation": ["192.0.2.1", "2001:db8::1"],
}
PUBLIC = ["93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize(
    "address", [(kind, a) for kind, addresses in REFUSED.items() for a in addresses], ids=str
)
def test_non_public_ranges_are_refused(address: tuple[str, str]) -> None:
    _, text = address
    assert address_problem(ipaddress.ip_address(text), allow_loopback=False) is not None


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_pass(text: str) -> None:
    assert address_problem(ipaddress.ip_address(text), allow_loopback=False) is None


def test_development_allows_loopback_and_nothing_else_private() -> None:
    assert address_problem(ipaddress.ip_address("127.0.0.1"), allow_loopback=True) is None
    assert address_problem(ipaddress.ip_address("::1"), allow_loopback=True) is None
    for text in ("10.0.0.1", "169.254.169.254", "fd00:ec2::254"):
        assert address_problem(ipaddress.ip_address(text), allow_loopback=True) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://8.8.8.8/hook",  # http only in development
        "ftp://8.8.8.8/hook",
        "https:///hook",
        "https://user:pw@8.8.8.8/hook",
        "https://8.8.8.8:99999/hook",
        "file:///etc/passwd",
    ],
)
def test_production_urls_must_be_plain_https(url: str) -> None:
    with pytest.raises(AddressRefused):
        parse_url(url, development=False)


async def test_every_resolved_address_is_checked_and_the_checked_one_is_used() -> None:
    target = await check_target("https://8.8.8.8:8443/x?y=1", development=False)
    assert target.connect_url() == "https://8.8.8.8:8443/x?y=1"
    assert target.host_header() == "8.8.8.8:8443"
    with pytest.raises(AddressRefused, match="non-public"):
        await check_target("https://169.254.169.254/latest/meta-data", development=False)
    with pytest.raises(AddressRefused, match="non-public"):
        await check_target("https://[fd00:ec2::254]/", development=False)
    # A name is resolved and judged by what it resolves to.
    with pytest.raises(AddressRefused, match=r"localhost: .* non-public"):
        await check_target("https://localhost/hook", development=False)


async def test_development_allows_http_to_loopback_only() -> None:
    target = await check_target("http://localhost:8080/hook", development=True)
    assert str(target.address) in ("127.0.0.1", "::1")
    assert target.host_header() == "localhost:8080"
    with pytest.raises(AddressRefused):
        await check_target("http://8.8.8.8/hook", development=True)
