"""The worker keeps the wallet code apart from the link to its offer, whatever the template:
what each message is given, and the messages it refuses to send (no broker, no database; the
SMS goes to the real HTTP sink)."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from opentelemetry import trace

from credbatch.batches.claim_mode import ClaimMode
from credbatch.config import Settings
from credbatch.devsinks.sms import SmsSink
from credbatch.schema.model import Attribute, AttributeType, Medium, SchemaVersion
from credbatch.signing.offer_codes import OfferCodes, pre_authorized_code
from credbatch.templating.placeholders import CLAIM_URL, OFFER_URL, TX_CODE
from credbatch.templating.sandbox import CompiledTemplate
from tests.fixtures.rendering import InlineRenderer
from workers.issuance.context import BatchContext
from workers.issuance.credential import Holder, holder_values, links_for
from workers.issuance.delivery.sms import SmsClient
from workers.issuance.invitations import Invitation, Inviter, offer_values
from workers.issuance.offers import Offers
from workers.issuance.rendering import EmailTemplate

KEK = base64.b64encode(b"code-apart-tests-kek-32-bytes-lo").decode()
TENANT = uuid.uuid4()
LINKS = links_for("https://issuer.example", "claim-token-1", None)
CONTEXT = BatchContext(
    tenant_id=TENANT,
    batch_id=uuid.uuid4(),
    schema=SchemaVersion(
        schema_id=uuid.uuid4(),
        version=1,
        display_name="Course",
        attributes=(Attribute("full_name", AttributeType.STRING, required=True),),
    ),
    mediums=frozenset({Medium.EMAIL, Medium.SMS}),
    validity_seconds=None,
    issuer=f"https://issuer.example/tenants/{TENANT}",
    vct="https://issuer.example/vct",
    email=EmailTemplate(
        CompiledTemplate("For {{ full_name }}"),
        CompiledTemplate("<p>{{ claim_url }}</p>", html=True),
        CompiledTemplate("{{ claim_url }}"),
    ),
    sms=None,
    certificate=None,
    claim_mode=ClaimMode.OID4VCI,
)
OFFERS = Offers(OfferCodes(base64.b64decode(KEK)), 3600)


@pytest_asyncio.fixture
async def sms_sink() -> AsyncIterator[SmsSink]:
    sink = SmsSink()
    await sink.start()
    try:
        yield sink
    finally:
        await sink.stop()


async def _send_sms(
    sink: SmsSink, sms: str, full_name: str = "Ann", record_id: uuid.UUID | None = None
) -> str | None:
    """Send the SMS of CONTEXT with this template; the failure's message, or None."""
    context = dataclasses.replace(CONTEXT, sms=CompiledTemplate(sms))
    client = SmsClient(sink.url, "ACdev", "dev", "+15005550006")
    inviter = Inviter(Settings(), None, client, InlineRenderer(), OFFERS)
    holder = Holder(record_id or uuid.uuid4(), None, "+14155550100", {"full_name": full_name})
    try:
        delivery = await inviter.send(
            Invitation(context, holder, LINKS, frozenset({Medium.SMS}), trace.INVALID_SPAN)
        )
    finally:
        await client.close()
    if delivery.failure is None:
        assert delivery.sent == {Medium.SMS}
        return None
    assert (delivery.failure.code, delivery.failure.transient) == ("TEMPLATE_ERROR", False)
    return str(delivery.failure.message)


def test_the_code_s_sms_gets_no_link_and_the_email_no_code() -> None:
    offer = OFFERS.link(CONTEXT, uuid.uuid4(), LINKS.claim_token)
    assert offer is not None and offer.tx_code is not None
    sms = offer_values(offer, Medium.SMS)
    assert sms == {CLAIM_URL: "", OFFER_URL: "", TX_CODE: offer.tx_code}
    email = offer_values(offer, Medium.EMAIL)
    assert email == {OFFER_URL: offer.offer_url, TX_CODE: ""}
    # Over the record's values, the SMS loses the claim link the others carry.
    holder = Holder(uuid.uuid4(), None, None, {"full_name": "Ann"})
    values = holder_values(CONTEXT, holder, LINKS, datetime.date(2026, 1, 31))
    assert values[CLAIM_URL] == LINKS.claim_url
    assert (values | sms)[CLAIM_URL] == ""


def test_one_medium_or_a_download_batch_has_no_code() -> None:
    for context in (
        dataclasses.replace(CONTEXT, mediums=frozenset({Medium.SMS})),
        dataclasses.replace(CONTEXT, mediums=frozenset({Medium.EMAIL})),
    ):
        offer = OFFERS.link(context, uuid.uuid4(), LINKS.claim_token)
        assert offer is not None and offer.tx_code is None
        for medium in (Medium.EMAIL, Medium.SMS):
            assert offer_values(offer, medium) == {OFFER_URL: offer.offer_url, TX_CODE: ""}
    download = dataclasses.replace(CONTEXT, claim_mode=ClaimMode.DOWNLOAD)
    assert OFFERS.link(download, uuid.uuid4(), LINKS.claim_token) is None
    assert offer_values(None, Medium.SMS) == {OFFER_URL: "", TX_CODE: ""}


async def test_an_sms_template_that_could_show_a_link_beside_the_code_is_not_sent(
    sms_sink: SmsSink,
) -> None:
    # As stored before templates were checked for it (the earlier default SMS).
    legacy = (
        "Claim it: {{ claim_url }}{% if tx_code %} Wallet code: {{ tx_code }}"
        "{% elif offer_url %} Wallet: {{ offer_url }}{% endif %}"
    )
    failure = await _send_sms(sms_sink, legacy)
    assert failure == "CODE_WITH_LINK: the template can show `tx_code` with `claim_url`: not sent"
    assert sms_sink.messages == []


async def test_a_rendered_sms_holding_a_link_s_secret_is_not_sent(sms_sink: SmsSink) -> None:
    # The template keeps them apart, but a value brings the link in all the same.
    apart = "{% if tx_code %}{{ full_name }}: {{ tx_code }}{% else %}{{ claim_url }}{% endif %}"
    for leaked in (
        LINKS.claim_url,
        f"{CONTEXT.issuer}/offers/{pre_authorized_code(TENANT, LINKS.claim_token)}",
    ):
        failure = await _send_sms(sms_sink, apart, full_name=leaked)
        assert failure == (
            "CODE_WITH_LINK: the rendered message holds the link to the offer beside the "
            "wallet code: not sent"
        )
    assert sms_sink.messages == []
    # With an ordinary value it goes, holding the code and nothing of the links.
    record_id = uuid.uuid4()
    assert await _send_sms(sms_sink, apart, record_id=record_id) is None
    offer = OFFERS.link(CONTEXT, record_id, LINKS.claim_token)
    assert offer is not None
    assert [m["body"] for m in sms_sink.messages] == [f"Ann: {offer.tx_code}"]
