"""Invitations in the issuer's name: its sender name and Reply-To on the email, its SMS
sender id, its name, logo and support contact as placeholders; through the real SMTP and SMS
sinks, no database."""

from __future__ import annotations

import dataclasses
import uuid
from email import message_from_bytes, policy

from opentelemetry import trace

from credbatch.config import Settings
from credbatch.devsinks.sms import SmsSink
from credbatch.devsinks.smtp import SmtpSink
from credbatch.schema.model import Medium
from credbatch.templating.sandbox import CompiledTemplate
from credbatch.tenants.display import issuer_display
from credbatch.tenants.profile import TenantProfile
from tests.fixtures.rendering import InlineRenderer
from tests.workers.issuance.test_invitations import BATCH_CONTEXT
from workers.issuance.credential import Holder, links_for
from workers.issuance.delivery.email import SmtpPool
from workers.issuance.delivery.sms import SmsClient
from workers.issuance.invitations import Invitation, Inviter
from workers.issuance.rendering import EmailTemplate

PROFILE = TenantProfile(
    display_name="Université Exemple",
    email_sender_name="Registre, Université Exemple",
    reply_to="registry@example.edu",
    sms_sender_id="ExampleUni",
    support_email="help@example.edu",
    support_url="https://example.edu/help",
)
LOGO_URI = "https://issuer.example/tenants/t/logo/" + "a" * 64 + ".png"
CONTEXT = dataclasses.replace(
    BATCH_CONTEXT,
    profile=PROFILE,
    display=issuer_display(PROFILE, logo_uri=LOGO_URI, logo_sha256="a" * 64),
    email=EmailTemplate(
        CompiledTemplate("{{ issuer_name }} for {{ full_name }}"),
        CompiledTemplate(
            '<img src="{{ issuer_logo_url }}" alt="{{ issuer_name }}">'
            "<p>{{ issuer_support_email }} {{ issuer_support_url }}</p>",
            html=True,
        ),
        CompiledTemplate("{{ issuer_name }}: {{ claim_url }}"),
    ),
    sms=CompiledTemplate("{{ issuer_name }}: {{ claim_url }}"),
)


async def test_the_email_and_sms_come_in_the_issuers_name() -> None:
    async with SmtpSink() as smtp_sink:
        sms_sink = SmsSink()
        await sms_sink.start()
        smtp = SmtpPool("127.0.0.1", smtp_sink.port, 1, timeout=5.0)
        sms = SmsClient(sms_sink.url, "ACdev", "dev", "+15005550006")
        inviter = Inviter(Settings(smtp_port=smtp_sink.port), smtp, sms, InlineRenderer())
        try:
            delivery = await inviter.send(
                Invitation(
                    CONTEXT,
                    Holder(uuid.uuid4(), "ann@example.test", "+14155550100", {"full_name": "Ann"}),
                    links_for("https://issuer.example", "claim-1", None),
                    frozenset({Medium.EMAIL, Medium.SMS}),
                    trace.INVALID_SPAN,
                )
            )
        finally:
            await smtp.close()
            await sms.close()
            await sms_sink.stop()
        assert delivery.failure is None and delivery.sent == {Medium.EMAIL, Medium.SMS}
        ((_, data),) = smtp_sink.messages
    mail = message_from_bytes(data, policy=policy.default)
    sender = mail["From"]
    assert sender.addresses[0].display_name == "Registre, Université Exemple"
    assert sender.addresses[0].addr_spec == Settings().smtp_from
    assert mail["Reply-To"] == "registry@example.edu"
    assert mail["Subject"] == "Université Exemple for Ann"
    body = mail.get_body(("html",))
    assert body is not None
    html = body.get_content()
    assert f'<img src="{LOGO_URI}" alt="Université Exemple">' in html
    assert "help@example.edu https://example.edu/help" in html
    ((sent_sms),) = sms_sink.messages
    assert sent_sms["from"] == "ExampleUni"
    assert sent_sms["body"].startswith("Université Exemple: ")


async def test_without_a_profile_the_platform_sends_as_before() -> None:
    async with SmtpSink() as smtp_sink:
        smtp = SmtpPool("127.0.0.1", smtp_sink.port, 1, timeout=5.0)
        inviter = Inviter(Settings(smtp_port=smtp_sink.port), smtp, None, InlineRenderer())
        try:
            await inviter.send(
                Invitation(
                    BATCH_CONTEXT,
                    Holder(uuid.uuid4(), "ann@example.test", None, {"full_name": "Ann"}),
                    links_for("https://issuer.example", "claim-1", None),
                    frozenset({Medium.EMAIL}),
                    trace.INVALID_SPAN,
                )
            )
        finally:
            await smtp.close()
        ((_, data),) = smtp_sink.messages
    mail = message_from_bytes(data, policy=policy.default)
    assert mail["From"] == Settings().smtp_from and mail["Reply-To"] is None
