"""A 200-record EMAIL + SMS batch with certificates, end to end through the real pieces."""

from __future__ import annotations

import io
import re
import zlib
from email import message_from_bytes
from email.message import Message

import asyncpg
import httpx
import pypdf

from credbatch.config import Settings
from credbatch.signing import sd_jwt
from credbatch.signing.jose import b64url_decode, verify_compact
from credbatch.signing.status_list import VALID, get_status
from tests.fixtures.batches import record_states
from tests.fixtures.issuance import (
    PublicServer,
    Sinks,
    arrange_batch,
    publish_jobs,
    running_worker,
    wait_for_batch,
)


def _text_part(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text part")


async def test_batch_with_email_sms_and_certificates_is_fully_issued_and_verifiable(
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    sinks: Sinks,
    public_server: PublicServer,
) -> None:
    arranged = await arrange_batch(owner_pool, 200)
    # Follows the bearer download; wallet batches are covered by tests/services/public.
    await owner_pool.execute(
        "UPDATE batches SET claim_mode = 'DOWNLOAD' WHERE id = $1", arranged.batch_id
    )
    await publish_jobs(worker_settings, arranged)
    async with running_worker(worker_settings):
        assert await wait_for_batch(owner_pool, arranged.batch_id) == "COMPLETED"
    assert await record_states(owner_pool, arranged.batch_id) == {"INVITED": 200}
    batch = await owner_pool.fetchrow(
        "SELECT completed_at FROM batches WHERE id = $1", arranged.batch_id
    )
    assert batch["completed_at"] is not None

    # 200 emails (multipart, one per holder) and 200 SMS arrived.
    assert len(sinks.smtp.messages) == 200
    assert len(sinks.sms.messages) == 200
    emails = {rcpt[0]: message_from_bytes(raw) for rcpt, raw in sinks.smtp.messages}
    sms = {m["to"]: m["body"] for m in sinks.sms.messages}
    assert set(emails) == {r["email"] for r in arranged.rows}
    assert set(sms) == {r["phone"] for r in arranged.rows}

    async with httpx.AsyncClient(base_url=public_server.url) as client:
        metadata = await client.get(f"/.well-known/jwt-vc-issuer/tenants/{arranged.tenant_id}")
        assert metadata.status_code == 200
        issuer = metadata.json()["issuer"]
        assert issuer == f"{public_server.url}/tenants/{arranged.tenant_id}"
        jwks = metadata.json()["jwks"]["keys"]
        status_lists: dict[str, bytes] = {}
        for row in arranged.rows:
            email = emails[row["email"]]
            assert email.is_multipart()
            text = _text_part(email)
            claim_url = re.search(r"claim: (\S+)", text)
            assert claim_url is not None
            assert claim_url.group(1) in sms[row["phone"]]
            # The claim page shows the claims and links the credential download.
            page = await client.get(claim_url.group(1))
            assert page.status_code == 200
            assert row["attributes"]["full_name"] in page.text
            download = await client.get(claim_url.group(1) + "/credential")
            assert download.headers["content-type"] == "application/dc+sd-jwt"
            verified = sd_jwt.verify(download.text, jwks)
            assert verified.header["typ"] == "dc+sd-jwt"
            # The attributes and the certificate's link are each selectively disclosable.
            cred_url = verified.disclosed["Cred_URL"]
            assert verified.disclosed == {**row["attributes"], "Cred_URL": cred_url}
            payload = verified.payload
            assert "Cred_URL" not in payload
            assert payload["iss"] == issuer
            assert payload["exp"] - payload["iat"] == 86400
            # Cred_URL serves the PDF with this row's values.
            assert cred_url in text
            pdf = await client.get(cred_url)
            assert pdf.headers["content-type"] == "application/pdf"
            pdf_text = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
            assert row["attributes"]["full_name"] in pdf_text
            assert f"scored {row['attributes']['score']} points" in pdf_text
            # The status list bit is "valid".
            status = payload["status"]["status_list"]
            uri = status["uri"]
            if uri not in status_lists:
                token = await client.get(uri)
                assert token.headers["content-type"] == "application/statuslist+jwt"
                _, list_payload = verify_compact(token.text, jwks, typ="statuslist+jwt")
                assert list_payload["sub"] == uri
                lst = list_payload["status_list"]["lst"]
                status_lists[uri] = zlib.decompress(b64url_decode(lst))
            assert get_status(status_lists[uri], status["idx"]) == VALID
    indexes = await owner_pool.fetch(
        "SELECT status_list_id, status_index FROM credentials WHERE batch_id = $1",
        arranged.batch_id,
    )
    assert len({(r["status_list_id"], r["status_index"]) for r in indexes}) == 200
