"""Which failure of an invitation counts, and what is sent: no broker, no database.

Unavailable channels are real ones: no SMTP pool or SMS client at all, or an SMTP server
port that refuses connections.
"""

from __future__ import annotations

import socket
import uuid

from opentelemetry import trace

from credbatch.config import Settings
from credbatch.schema.model import Attribute, AttributeType, Medium, SchemaVersion
from credbatch.templating.sandbox import CompiledTemplate
from tests.fixtures.rendering import InlineRenderer
from workers.issuance.context import BatchContext
from workers.issuance.credential import Holder, links_for
from workers.issuance.delivery.email import SmtpPool
from workers.issuance.invitations import Invitation, Inviter
from workers.issuance.rendering import EmailTemplate

BATCH_CONTEXT = BatchContext(
    tenant_id=uuid.uuid4(),
    batch_id=uuid.uuid4(),
    schema=SchemaVersion(
        schema_id=uuid.uuid4(),
        version=1,
        display_name="Course",
        attributes=(Attribute("full_name", AttributeType.STRING, required=True),),
    ),
    mediums=frozenset({Medium.EMAIL, Medium.SMS}),
    validity_seconds=None,
    issuer="https://issuer.example/tenants/t",
    vct="https://issuer.example/tenants/t/schemas/s/v1",
    email=EmailTemplate(
        CompiledTemplate("For {{ full_name }}"),
        CompiledTemplate("<p>{{ claim_url }}</p>", html=True),
        CompiledTemplate("{{ claim_url }}"),
    ),
    sms=CompiledTemplate("{{ claim_url }}"),
    certificate=None,
)


def invitation(due: frozenset[Medium]) -> Invitation:
    return Invitation(
        context=BATCH_CONTEXT,
        holder=Holder(uuid.uuid4(), "ann@example.test", "+14155550100", {"full_name": "Ann"}),
        links=links_for("https://issuer.example", "claim-1", None),
        due=due,
        span=trace.INVALID_SPAN,
    )


def _inviter(settings: Settings, smtp: SmtpPool | None) -> Inviter:
    return Inviter(settings, smtp=smtp, sms=None, renderer=InlineRenderer())


def refused_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        _, port = sock.getsockname()
    return int(port)


async def test_nothing_due_sends_nothing_and_succeeds() -> None:
    delivery = await _inviter(Settings(), None).send(invitation(frozenset()))
    assert delivery.sent == frozenset()
    assert delivery.failure is None


async def test_a_medium_without_its_channel_fails_permanently() -> None:
    delivery = await _inviter(Settings(), None).send(invitation(frozenset({Medium.SMS})))
    assert delivery.failure is not None
    assert (delivery.failure.code, delivery.failure.transient) == ("SMS_UNAVAILABLE", False)
    assert delivery.sent == frozenset()


async def test_a_permanent_failure_outweighs_a_transient_one() -> None:
    port = refused_port()
    smtp = SmtpPool("127.0.0.1", port, 1, timeout=2.0)
    try:
        delivery = await _inviter(Settings(smtp_port=port), smtp).send(
            invitation(frozenset({Medium.EMAIL, Medium.SMS}))
        )
    finally:
        await smtp.close()
    # The email failed first and transiently; retrying cannot make the SMS succeed.
    assert delivery.failure is not None
    assert (delivery.failure.code, delivery.failure.transient) == ("SMS_UNAVAILABLE", False)
    assert delivery.sent == frozenset()


async def test_a_transient_failure_alone_counts() -> None:
    port = refused_port()
    smtp = SmtpPool("127.0.0.1", port, 1, timeout=2.0)
    try:
        delivery = await _inviter(Settings(smtp_port=port), smtp).send(
            invitation(frozenset({Medium.EMAIL}))
        )
    finally:
        await smtp.close()
    assert delivery.failure is not None
    assert (delivery.failure.code, delivery.failure.transient) == ("SMTP_UNAVAILABLE", True)
