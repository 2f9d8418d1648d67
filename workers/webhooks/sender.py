"""One HTTP attempt to the address that was checked, never to a fresh DNS answer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from credbatch.webhooks.addresses import Target

USER_AGENT = "credbatch-webhooks/1"


@dataclass(frozen=True)
class Reply:
    """What came back: a status, or None and the reason none did."""

    status: int | None
    retry_after: str | None = None
    error: str = ""


def new_client() -> httpx.AsyncClient:
    # No keep-alive: the pool is keyed by address, so a kept connection made for one host
    # name (and TLS-verified for it) could otherwise carry another name's request to the same
    # address. No redirects: a public endpoint must not bounce us to a private one. No
    # environment proxies: a proxy would resolve the name itself, undoing the address check.
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


async def post(
    client: httpx.AsyncClient,
    target: Target,
    headers: dict[str, str],
    body: bytes,
    seconds: float,
) -> Reply:
    """POST ``body`` to ``target.address``, naming ``target.host`` in Host and TLS SNI (the
    certificate is verified against that name). The whole exchange gets ``seconds``;
    the response body is not read."""
    request = client.build_request(
        "POST",
        target.connect_url(),
        content=body,
        headers={**headers, "host": target.host_header(), "user-agent": USER_AGENT},
        extensions={"sni_hostname": target.host},
        timeout=seconds,
    )
    try:
        async with asyncio.timeout(seconds):
            response = await client.send(request, stream=True)
            await response.aclose()
    except TimeoutError:
        return Reply(None, error=f"no response within {seconds:g} s")
    except httpx.TimeoutException:
        return Reply(None, error=f"no response within {seconds:g} s")
    except httpx.HTTPError as error:
        return Reply(None, error=f"{type(error).__name__}: {error}"[:300])
    return Reply(response.status_code, response.headers.get("retry-after"))
