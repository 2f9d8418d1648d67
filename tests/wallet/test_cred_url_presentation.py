"""Cred_URL reaches only the verifiers its holder shows it to, as another library reads it.

The issuance worker issues a credential with a certificate; ``present.mjs`` builds the holder's
presentations with ``@sd-jwt/sd-jwt-vc`` (pinned in ``package-lock.json``) and verifies them
against the running public app (issuer keys, status list), as a verifier would.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from credbatch.config import Settings
from credbatch.signing import sd_jwt
from credbatch.signing.jose import b64url_decode
from tests.fixtures.issuance import (
    PublicServer,
    Sinks,
    arrange_batch,
    publish_jobs,
    running_worker,
    wait_for_batch,
)

ROOT = Path(__file__).resolve().parents[2]
PRESENT = ROOT / "tests" / "wallet" / "present.mjs"


@pytest.fixture(scope="module", autouse=True)
def wallet_deps() -> None:
    """The pinned libraries, installed once (make skips an up-to-date install)."""
    assert shutil.which("node"), "this test needs Node.js (node) on PATH"
    subprocess.run(["make", "-s", "wallet-deps"], cwd=ROOT, check=True, timeout=300)


async def _present(credential: str, frames: dict[str, Any]) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        "node",
        str(PRESENT),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    request = json.dumps({"credential": credential, "frames": frames}).encode()
    stdout, stderr = await asyncio.wait_for(process.communicate(request), timeout=60)
    assert process.returncode == 0, stderr.decode()
    result: dict[str, Any] = json.loads(stdout)
    return result


def _disclosed_names(presentation: str) -> set[str]:
    """The claim names of a presentation's disclosures, decoded by hand."""
    _, disclosures = sd_jwt.split(presentation)
    return {json.loads(b64url_decode(d))[1] for d in disclosures}


async def test_a_presentation_that_discloses_nothing_carries_no_certificate_link(
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    sinks: Sinks,
    public_server: PublicServer,
) -> None:
    arranged = await arrange_batch(owner_pool, 1, mediums=("EMAIL",))
    await publish_jobs(worker_settings, arranged)
    async with running_worker(worker_settings):
        assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED"
    row = await owner_pool.fetchrow(
        "SELECT c.sd_jwt, ce.id AS certificate_id FROM credentials c JOIN certificates ce"
        " ON ce.tenant_id = c.tenant_id AND ce.record_id = c.record_id WHERE c.batch_id = $1",
        arranged.batch_id,
    )
    assert row is not None
    cred_url = f"{public_server.url}/c/{row['certificate_id']}"
    attributes = arranged.rows[0]["attributes"]

    shown = await _present(
        row["sd_jwt"],
        {
            "nothing": {},
            "certificate": {"Cred_URL": True},
            "name": {"full_name": True},
            "all": {name: True for name in [*attributes, "Cred_URL"]},
        },
    )

    nothing = shown["nothing"]
    assert "Cred_URL" not in nothing["claims"]
    assert (
        cred_url not in nothing["presentation"]
        and _disclosed_names(nothing["presentation"]) == set()
    )
    # Disclosing another attribute does not bring the link along.
    name = shown["name"]
    assert name["claims"]["full_name"] == attributes["full_name"]
    assert "Cred_URL" not in name["claims"]
    assert _disclosed_names(name["presentation"]) == {"full_name"}
    # The holder who chooses to show the certificate can.
    assert shown["certificate"]["claims"]["Cred_URL"] == cred_url
    assert _disclosed_names(shown["certificate"]["presentation"]) == {"Cred_URL"}
    everything = shown["all"]["claims"]
    assert everything["Cred_URL"] == cred_url
    assert {k: everything[k] for k in attributes} == attributes
