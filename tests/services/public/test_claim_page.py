"""The claim page as a holder's phone shows it: headless Chromium renders the page served by
uvicorn, under the page's own Content-Security-Policy, and the QR code in the screenshot reads
back as the credential's offer link."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest
import zxingcpp
from PIL import Image

from credbatch.offer_links import offer_link
from credbatch.signing import opaque
from credbatch.signing.offer_codes import pre_authorized_code
from tests.fixtures.issuance import PublicServer
from tests.security.public_world import PUBLIC_URL, Issued, issue_one, worker_side
from tests.services.public.oid4vci_world import offer_one

CHROMIUM = Path("/usr/bin/chromium")
# A mid-range phone's viewport, in CSS pixels.
PHONE = "412,915"
# The stylesheet's button colour: present in the screenshot only if the CSP let the style in.
BUTTON_RGB = (0x0B, 0x4F, 0x9C)


async def screenshot(url: str, directory: Path) -> Image.Image:
    """``url`` rendered by headless Chromium at a phone's size (run without blocking the loop:
    the server under test runs in it)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    png = directory / "page.png"
    process = await asyncio.create_subprocess_exec(
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={directory / 'profile'}",
        f"--screenshot={png}",
        f"--window-size={PHONE}",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), 120)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    assert process.returncode == 0 and png.exists(), stderr.decode(errors="replace")[-2000:]
    return Image.open(png).convert("RGB")


async def set_mediums(owner_pool: asyncpg.Pool, issued: Issued, mediums: list[str]) -> None:
    await owner_pool.execute(
        "UPDATE batches SET mediums = $2 WHERE tenant_id = $1",
        issued.tenant_id,
        mediums,
    )


async def test_a_phone_shows_the_offer_qr_code_and_the_wallet_link(
    app_pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    public_server: PublicServer,
    tmp_path: Path,
) -> None:
    keys, signer = worker_side(app_pool)
    issued = await issue_one(app_pool, keys, signer, claim_mode="OID4VCI")
    await set_mediums(owner_pool, issued, ["EMAIL", "SMS"])
    page_url = f"{public_server.url}/claim/{issued.claim_token}"
    # The link the invitation carries: the offer's code derives from the claim token.
    link = offer_link(
        f"{public_server.url}/tenants/{issued.tenant_id}",
        pre_authorized_code(issued.tenant_id, issued.claim_token),
    )
    assert link.startswith("openid-credential-offer://?credential_offer_uri=http%3A%2F%2F")

    async with httpx.AsyncClient() as client:
        response = await client.get(page_url)
    assert response.status_code == 200
    html = response.text
    assert '<html lang="en">' in html
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in html
    assert "<h1>" in html and 'alt="QR code: the offer of this credential' in html
    assert f'href="{link.replace("&", "&amp;")}">Open in wallet</a>' in html
    assert "6-digit code by SMS" in html
    assert "<dt>name</dt><dd>Ada</dd>" in html
    assert "<script" not in html
    # A wallet batch's bearer download answers 410: the page does not offer it.
    assert "/credential" not in html and "SD-JWT" not in html
    assert f'href="{PUBLIC_URL}/c/{issued.certificate_id}">Certificate (PDF)' in html

    image = await screenshot(page_url, tmp_path)
    assert image.size == (412, 915)
    codes = zxingcpp.read_barcodes(image)
    assert [code.text for code in codes] == [link]
    # The stylesheet applied (the CSP allows it): the wallet button has its colour.
    assert BUTTON_RGB in {colour for _, colour in image.getcolors(412 * 915) or []}


async def test_the_hint_shows_only_when_a_code_comes_by_sms_and_revoked_has_no_offer(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, public_server: PublicServer
) -> None:
    keys, signer = worker_side(app_pool)
    issued = await issue_one(app_pool, keys, signer, claim_mode="OID4VCI")
    await set_mediums(owner_pool, issued, ["EMAIL"])
    async with httpx.AsyncClient(base_url=public_server.url) as client:
        page = (await client.get(f"/claim/{issued.claim_token}")).text
        assert "Open in wallet" in page and "by SMS" not in page
        css = await client.get("/static/claim.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        await owner_pool.execute(
            "UPDATE records SET state = 'REVOKED', revoke_reason = 'test', revoked_at = now()"
            " WHERE tenant_id = $1",
            issued.tenant_id,
        )
        revoked = (await client.get(f"/claim/{issued.claim_token}")).text
    assert "revoked this credential" in revoked
    assert "openid-credential-offer" not in revoked and "data:image/png" not in revoked


async def test_an_unknown_token_has_no_page(public_server: PublicServer) -> None:
    async with httpx.AsyncClient(base_url=public_server.url) as client:
        response = await client.get(f"/claim/{opaque.new_id(uuid.uuid4())}")
    assert response.status_code == 404


async def test_every_link_of_either_claim_mode_works(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, public_server: PublicServer
) -> None:
    """Each page links only to what answers for its mode: a wallet batch's page has the offer
    and no bearer download (closed for wallet batches); a download batch's page has the
    download and no offer (its batch stores none). Every link shown is followed."""
    keys, signer = worker_side(app_pool)
    offered = await offer_one(app_pool, public_url=public_server.url)
    wallet_token = await owner_pool.fetchval(
        "SELECT claim_token FROM credentials WHERE record_id = $1", offered.record_id
    )
    download = await issue_one(app_pool, keys, signer)
    async with httpx.AsyncClient(base_url=public_server.url) as client:
        wallet_page = (await client.get(f"/claim/{wallet_token}")).text
        download_page = (await client.get(f"/claim/{download.claim_token}")).text
        assert "Open in wallet" in wallet_page and "data:image/png" in wallet_page
        assert "SD-JWT" not in wallet_page
        assert (await client.get(f"/claim/{wallet_token}/credential")).status_code == 410
        assert "The credential file (SD-JWT)" in download_page
        assert "openid-credential-offer" not in download_page
        assert "Open in wallet" not in download_page and "data:image/png" not in download_page
        followed = []
        for page in (wallet_page, download_page):
            for href in re.findall(r'href="([^"]+)"', page):
                url = unescape(href)
                if url.startswith("openid-credential-offer://"):
                    url = parse_qs(urlsplit(url).query)["credential_offer_uri"][0]
                # The fixtures' credentials name the certificate under the fixed test origin.
                url = url.replace(PUBLIC_URL, public_server.url, 1)
                response = await client.get(url)
                assert response.status_code == 200, url
                followed.append(urlsplit(url).path.split("/")[1])
    # The stylesheet twice, the wallet page's offer, the download page's file and certificate.
    assert sorted(followed) == ["c", "claim", "static", "static", "tenants"]
