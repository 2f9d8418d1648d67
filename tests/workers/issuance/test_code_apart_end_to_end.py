"""The default invitations of wallet batches, end to end through the real worker, its render
processes, the SMTP and SMS sinks and the public claim page: by email and SMS the link goes by
email and the wallet code by SMS, never both in one message; with one medium there is no code.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message

import asyncpg
import httpx

from credbatch.config import Settings
from credbatch.offer_links import OFFER_SCHEME
from credbatch.signing.offer_codes import OfferCodes, digest
from tests.fixtures.batches import insert_batch, insert_schema
from tests.fixtures.issuance import (
    ATTRIBUTES,
    KEK,
    Arranged,
    PublicServer,
    Sinks,
    holder_row,
    publish_jobs,
    running_worker,
    wait_for_batch,
)


@dataclass(frozen=True)
class Received:
    """What one holder received, and what their offer is."""

    email: str | None  # the text and HTML parts, and the subject
    sms: str | None
    claim_url: str
    offer_url_code: str  # the offer's pre-authorized code, as it appears in a link
    tx_code: str  # what the record's code is (or would be, when its offer asks for none)
    tx_code_asked: bool  # the stored offer asks for it


async def _issue_with_defaults(
    settings: Settings, owner_pool: asyncpg.Pool, sinks: Sinks, mediums: Sequence[str]
) -> list[Received]:
    """A wallet batch of three records with the tenant's default templates, issued and
    invited; what each holder received."""
    tenant_id = uuid.uuid4()
    domain = f"b{uuid.uuid4().hex[:12]}.example.test"
    rows = [holder_row(i, domain) for i in range(3)]
    schema_id = await insert_schema(owner_pool, tenant_id, attributes=ATTRIBUTES)
    batch = await insert_batch(
        owner_pool,
        tenant_id,
        schema_id,
        states=["QUEUED"] * 3,
        mediums=mediums,
        emails=[r["email"] if "EMAIL" in mediums else None for r in rows],
        phones=[r["phone"] if "SMS" in mediums else None for r in rows],
        attributes=[r["attributes"] for r in rows],
    )
    arranged = Arranged(tenant_id, batch.batch_id, batch.record_ids, rows)
    await publish_jobs(settings, arranged)
    async with running_worker(settings):
        assert await wait_for_batch(owner_pool, batch.batch_id) == "COMPLETED"
    emails = {rcpt[0]: message_from_bytes(raw) for rcpt, raw in sinks.smtp.messages}
    texts = {m["to"]: m["body"] for m in sinks.sms.messages}
    codes = OfferCodes(base64.b64decode(KEK))
    received = []
    for record_id, row in zip(batch.record_ids, rows, strict=True):
        stored = await owner_pool.fetchrow(
            "SELECT c.claim_token, o.tx_code_hash FROM credentials c JOIN oid4vci_offers o"
            " ON o.tenant_id = c.tenant_id AND o.record_id = c.record_id"
            " WHERE c.record_id = $1",
            record_id,
        )
        secrets = codes.secrets(tenant_id, record_id, stored["claim_token"])
        email = emails.get(row["email"]) if "EMAIL" in mediums else None
        received.append(
            Received(
                email=_all_text(email) if email is not None else None,
                sms=texts.get(row["phone"]) if "SMS" in mediums else None,
                claim_url=f"{settings.public_url}/claim/{stored['claim_token']}",
                offer_url_code=secrets.pre_authorized_code,
                tx_code=secrets.tx_code,
                tx_code_asked=stored["tx_code_hash"] is not None,
            )
        )
        if stored["tx_code_hash"] is not None:
            assert stored["tx_code_hash"] == digest(secrets.tx_code)
    return received


def _all_text(message: Message) -> str:
    parts = [str(message["Subject"])]
    for part in message.walk():
        if part.get_content_type() in ("text/plain", "text/html"):
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            parts.append(payload.decode())
    return "\n".join(parts)


def _holds_code(text: str, code: str) -> bool:
    return re.search(rf"(?<!\d){code}(?!\d)", text) is not None


def _holds_link(text: str, holder: Received) -> bool:
    return (
        holder.claim_url in text
        or holder.offer_url_code in text
        or "/claim/" in text
        or OFFER_SCHEME in text
    )


async def test_by_email_and_sms_the_link_goes_by_email_and_the_code_by_sms(
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    sinks: Sinks,
    public_server: PublicServer,
) -> None:
    received = await _issue_with_defaults(worker_settings, owner_pool, sinks, ("EMAIL", "SMS"))
    async with httpx.AsyncClient() as client:
        for holder in received:
            assert holder.email is not None and holder.sms is not None
            assert holder.tx_code_asked
            # The email: the claim link and the offer, never the code.
            assert holder.claim_url in holder.email
            assert holder.offer_url_code in holder.email
            assert not _holds_code(holder.email, holder.tx_code)
            # The SMS: the code, and nothing that leads to the offer.
            assert _holds_code(holder.sms, holder.tx_code)
            assert not _holds_link(holder.sms, holder)
            assert "http" not in holder.sms
            # The claim page the email leads to shows the offer, and only says a code will
            # come by SMS.
            page = await client.get(holder.claim_url)
            assert page.status_code == 200
            assert holder.offer_url_code in page.text
            assert "6-digit code by SMS" in page.text
            assert not _holds_code(page.text, holder.tx_code)


async def test_with_one_medium_the_message_carries_the_link_and_there_is_no_code(
    worker_settings: Settings,
    owner_pool: asyncpg.Pool,
    sinks: Sinks,
    public_server: PublicServer,
) -> None:
    by_sms = await _issue_with_defaults(worker_settings, owner_pool, sinks, ("SMS",))
    by_email = await _issue_with_defaults(worker_settings, owner_pool, sinks, ("EMAIL",))
    async with httpx.AsyncClient() as client:
        for holder in [*by_sms, *by_email]:
            message = holder.sms if holder.email is None else holder.email
            assert message is not None
            # The stored offer asks for no code, and no message mentions one.
            assert not holder.tx_code_asked
            assert holder.claim_url in message
            assert holder.offer_url_code in message
            assert "wallet code" not in message.lower()
            assert not _holds_code(message, holder.tx_code)
            page = await client.get(holder.claim_url)
            assert page.status_code == 200
            assert "by SMS" not in page.text
    for holder in by_sms:
        assert holder.email is None
    for holder in by_email:
        assert holder.sms is None
