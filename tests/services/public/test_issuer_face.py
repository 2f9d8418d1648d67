"""The issuer's profile on the public side: the claim page (name in the browser's language,
logo, colours, support contact) under its strict CSP, screenshotted by headless Chromium and
checked by axe-core; the logo and type metadata endpoints; the issuer metadata's display;
and none of it reachable through another tenant's URLs."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from PIL import Image

from credbatch.tenancy import service_scope, tenant_transaction
from credbatch.tenants import profile as profiles
from credbatch.tenants.logo import accept_logo
from credbatch.tenants.profile import TenantProfile
from tests.fixtures.batches import insert_schema
from tests.fixtures.issuance import PublicServer
from tests.security.public_world import issue_one, worker_side
from tests.services.public.oid4vci_world import offer_one
from tests.services.public.test_claim_page import CHROMIUM, screenshot
from tests.tenants.images import SVG_CLEAN

ROOT = Path(__file__).resolve().parents[3]
AXE = ROOT / "tests" / "services" / "public" / "a11y" / "axe.mjs"
# The logo's one colour and the band's: present in the screenshot only if both rendered.
LOGO_RGB = (0x12, 0xAB, 0x34)
BAND = "#1a4480"
BAND_RGB = (0x1A, 0x44, 0x80)


def _logo_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 40), LOGO_RGB).save(out, format="PNG")
    return out.getvalue()


LOGO = _logo_png()


async def _set_profile(app_pool: asyncpg.Pool, tenant: uuid.UUID, **fields: Any) -> None:
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        await profiles.save(conn, TenantProfile(**fields))


async def _branded_claim(app_pool: asyncpg.Pool) -> tuple[uuid.UUID, str]:
    keys, signer = worker_side(app_pool)
    issued = await issue_one(app_pool, keys, signer, claim_mode="OID4VCI")
    await _set_profile(
        app_pool,
        issued.tenant_id,
        display_name="Example University",
        localized_display_names={"de": "Beispiel-Universität"},
        logo=accept_logo(LOGO),
        background_color=BAND,
        primary_color="#1a4480",
        support_email="help@example.edu",
        support_url="https://example.edu/help",
    )
    return issued.tenant_id, issued.claim_token


@pytest.fixture(scope="module")
def axe_deps() -> None:
    """The pinned axe-core, installed once (make skips an up-to-date install)."""
    assert shutil.which("node"), "the accessibility test needs Node.js (node) on PATH"
    subprocess.run(["make", "-s", "a11y-deps"], cwd=ROOT, check=True, timeout=300)


async def test_the_claim_page_shows_the_issuers_name_logo_colours_and_contact(
    app_pool: asyncpg.Pool, public_server: PublicServer, tmp_path: Path
) -> None:
    tenant, token = await _branded_claim(app_pool)
    page_url = f"{public_server.url}/claim/{token}"
    async with httpx.AsyncClient() as client:
        english = await client.get(page_url)
        german = await client.get(page_url, headers={"Accept-Language": "de-AT,de;q=0.9,en;q=0.5"})
        html = english.text
        logo_path = f"/tenants/{tenant}/logo/{hashlib.sha256(LOGO).hexdigest()}.png"
        assert f'<img class="logo" src="{logo_path}" alt="Example University logo">' in html
        assert '<strong lang="en">Example University</strong>' in html
        assert '<strong lang="de">Beispiel-Universität</strong>' in german.text
        assert english.headers["vary"] == "Accept-Language"
        assert 'href="mailto:help@example.edu"' in html
        assert 'href="https://example.edu/help"' in html
        assert "<script" not in html and "style=" not in html
        # The CSP still allows only this origin's images and styles, and no script at all.
        csp = english.headers["content-security-policy"]
        assert "img-src 'self' data:;" in csp and "script-src" not in csp
        assert "default-src 'none'" in csp
        theme = await client.get(f"{public_server.url}/static/theme/1a4480-1a4480.css")
        assert theme.status_code == 200 and "immutable" in theme.headers["cache-control"]
        assert f".brand {{ background: {BAND}; color: #ffffff; }}" in theme.text
    image = await screenshot(page_url, tmp_path)
    colours = {colour for _, colour in image.getcolors(412 * 915) or []}
    assert LOGO_RGB in colours, "the logo did not render (blocked or missing)"
    assert BAND_RGB in colours, "the issuer's colours did not apply"


async def test_the_branded_claim_page_passes_axe(
    app_pool: asyncpg.Pool, public_server: PublicServer, tmp_path: Path, axe_deps: None
) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    _, token = await _branded_claim(app_pool)
    process = await asyncio.create_subprocess_exec(
        "node",
        "--experimental-websocket",
        "--no-warnings",
        str(AXE),
        str(CHROMIUM),
        f"{public_server.url}/claim/{token}",
        str(tmp_path / "profile"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    result = json.loads(stdout)
    assert result["violations"] == []
    # axe ran its rules (contrast, image alternatives, landmarks, language...).
    assert result["passes"] >= 10


async def test_the_logo_is_served_by_digest_and_only_to_its_own_tenants_url(
    app_pool: asyncpg.Pool, public_server: PublicServer
) -> None:
    mine, other = uuid.uuid4(), uuid.uuid4()
    svg = accept_logo(SVG_CLEAN)
    await _set_profile(app_pool, mine, display_name="Mine", logo=svg)
    await _set_profile(app_pool, other, display_name="Other")
    base = f"/tenants/{mine}/logo/{svg.sha256}"
    async with httpx.AsyncClient(base_url=public_server.url) as client:
        served = await client.get(base + ".svg")
        assert served.status_code == 200 and served.content == svg.content
        assert served.headers["content-type"] == "image/svg+xml"
        assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
        # An SVG opened on its own can run nothing either.
        assert "default-src 'none'" in served.headers["content-security-policy"]
        assert served.headers["x-content-type-options"] == "nosniff"
        for path in (
            base + ".png",  # the wrong type
            f"/tenants/{other}/logo/{svg.sha256}.svg",  # another tenant's URL, same digest
            f"/tenants/{mine}/logo/{'0' * 64}.svg",  # a digest that is not the current logo
            f"/tenants/{mine}/logo/../../statuslists.svg",
        ):
            assert (await client.get(path)).status_code == 404, path


async def test_issuer_metadata_names_the_issuer_per_locale_with_its_logo(
    app_pool: asyncpg.Pool, public_server: PublicServer
) -> None:
    offered = await offer_one(app_pool, public_url=public_server.url)
    path = f"/.well-known/openid-credential-issuer/tenants/{offered.tenant_id}"
    async with httpx.AsyncClient(base_url=public_server.url) as client:
        bare = (await client.get(path)).json()
        assert "display" not in bare  # never named: no name is made up
        await _set_profile(
            app_pool,
            offered.tenant_id,
            display_name="Example University",
            localized_display_names={"fr": "Université Exemple"},
            logo=accept_logo(LOGO),
        )
        named = (await client.get(path)).json()
    logo_uri = (
        f"{public_server.url}/tenants/{offered.tenant_id}/logo/"
        f"{hashlib.sha256(LOGO).hexdigest()}.png"
    )
    assert named["display"] == [
        {
            "name": "Example University",
            "locale": "en",
            "logo": {"uri": logo_uri, "alt_text": "Example University logo"},
        },
        {
            "name": "Université Exemple",
            "locale": "fr",
            "logo": {"uri": logo_uri, "alt_text": "Université Exemple logo"},
        },
    ]
    (configuration,) = named["credential_configurations_supported"].values()
    assert [d["locale"] for d in configuration["credential_metadata"]["display"]] == ["en", "fr"]


async def test_type_metadata_is_served_as_stored_and_immutable(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, public_server: PublicServer
) -> None:
    offered = await offer_one(app_pool, public_url=public_server.url)
    vct = f"/tenants/{offered.tenant_id}/schemas/{offered.schema_id}/v1"
    stored = await owner_pool.fetchrow(
        "SELECT document, integrity FROM schema_type_metadata WHERE tenant_id = $1",
        offered.tenant_id,
    )
    async with httpx.AsyncClient(base_url=public_server.url) as client:
        served = await client.get(vct)
        # The profile set afterwards changes nothing already issued under the version.
        await _set_profile(app_pool, offered.tenant_id, display_name="Renamed")
        again = await client.get(vct)
        missing = [
            (await client.get(path)).status_code
            for path in (
                f"/tenants/{offered.tenant_id}/schemas/{offered.schema_id}/v2",
                f"/tenants/{offered.tenant_id}/schemas/{offered.schema_id}/1",
                f"/tenants/{uuid.uuid4()}/schemas/{offered.schema_id}/v1",
            )
        ]
    assert served.status_code == 200 and served.content == bytes(stored["document"])
    assert again.content == served.content
    assert served.headers["content-type"] == "application/json"
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    digest = base64.b64encode(hashlib.sha256(served.content).digest()).decode()
    assert stored["integrity"] == f"sha256-{digest}"
    document = served.json()
    assert document["vct"] == f"{public_server.url}{vct}"
    assert document["claims"][0]["path"] == ["name"]
    assert missing == [404, 404, 404]


async def test_the_application_role_cannot_rewrite_stored_type_metadata(
    app_pool: asyncpg.Pool, public_server: PublicServer
) -> None:
    offered = await offer_one(app_pool, public_url=public_server.url)
    async with tenant_transaction(app_pool, service_scope(offered.tenant_id)) as conn:
        for statement in (
            "UPDATE schema_type_metadata SET document = '\\x7b7d'",
            "DELETE FROM schema_type_metadata",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with conn.transaction():  # a savepoint: the next statement still runs
                    await conn.execute(statement)


async def test_claims_show_their_labels_in_the_browsers_language(
    app_pool: asyncpg.Pool, owner_pool: asyncpg.Pool, public_server: PublicServer
) -> None:
    tenant = uuid.uuid4()
    attributes = [
        {
            "name": "name",
            "type": "STRING",
            "required": True,
            "description": "Holder's name",
            "labels": {"de": "Vollständiger Name", "fr": "Nom complet"},
        }
    ]
    async with tenant_transaction(app_pool, service_scope(tenant)) as conn:
        schema_id = await insert_schema(conn, tenant, attributes=attributes)
    await _set_profile(app_pool, tenant, display_name="Example University")
    offered = await offer_one(
        app_pool, public_url=public_server.url, tenant_id=tenant, schema_id=schema_id
    )
    token = await owner_pool.fetchval(
        "SELECT claim_token FROM credentials WHERE record_id = $1", offered.record_id
    )
    async with httpx.AsyncClient(base_url=public_server.url) as client:
        german = (await client.get(f"/claim/{token}", headers={"Accept-Language": "de"})).text
        french = (await client.get(f"/claim/{token}", headers={"Accept-Language": "fr-CA"})).text
        plain = (await client.get(f"/claim/{token}")).text
    assert '<dt lang="de">Vollständiger Name</dt><dd>Ada</dd>' in german
    assert '<dt lang="fr">Nom complet</dt><dd>Ada</dd>' in french
    # No language asked: the issuer's default locale, whose label is the description.
    assert '<dt lang="en">Holder&#39;s name</dt><dd>Ada</dd>' in plain
