"""Where webhooks may be sent: URL form, every resolved address, the development allowance."""

from __future__ import annotations

import ipaddress

import pytest

from credbatch.webhooks.addresses import (
    AddressRefused,
    address_problem,
    check_target,
    parse_url,
)
from credbatch.webhooks.special_purpose import refusal
from tests.webhooks.test_special_purpose import TABLE


def test_an_address_is_judged_by_the_special_purpose_tables() -> None:
    assert address_problem(ipaddress.ip_address("8.8.8.8"), allow_loopback=False) is None
    problem = address_problem(ipaddress.ip_address("::ffff:a9fe:a9fe"), allow_loopback=False)
    assert problem == refusal(ipaddress.ip_address("169.254.169.254"))


def test_development_allows_loopback_and_nothing_else_special() -> None:
    for text in ("127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"):
        assert address_problem(ipaddress.ip_address(text), allow_loopback=True) is None
    for text, named in TABLE:
        if named not in (None, "127.0.0.0/8", "::1/128"):
            address = ipaddress.ip_address(text)
            assert address_problem(address, allow_loopback=True) is not None, text


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
