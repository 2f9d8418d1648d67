"""Invitations: one email and/or SMS per issued record, for each medium not yet sent.

The messages of a group's invitations are rendered together, in one request to the worker's
render processes per tenant; sends then run concurrently, at most ``worker_concurrency`` at a
time per worker. A failed send
becomes an ``IssuanceFailure`` (transient or permanent) in the result, never an exception,
so one holder's bad address does not disturb the group; any other error is a bug or an
outage and propagates. Each send the server accepted is reported to ``on_sent`` at once (the
worker records it, so a restarted worker does not send it again).

The wallet code never travels with the link to its offer (credbatch.templating.channels):
the message that carries the code is given neither ``claim_url`` nor ``offer_url``, and it is
not sent, failing with ``CODE_WITH_LINK``, when its template could show a link beside the code
or its rendered text holds the claim token or the offer's code all the same. Templates and
uploads are checked for this before; these checks hold for templates stored before them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry.trace import Span

from credbatch.bounce_settings import bounce_identity
from credbatch.config import Settings
from credbatch.delivery import verp
from credbatch.metrics import INVITATION_DURATION, INVITATION_FAILURES
from credbatch.schema.model import Medium
from credbatch.signing.offer_codes import pre_authorized_code
from credbatch.templating.channels import CODE_WITH_LINK, links_beside_code, shows_links
from credbatch.templating.placeholders import CLAIM_URL, OFFER_URL, TX_CODE
from credbatch.templating.runner import Rendered, Renderer, TextJob
from credbatch.templating.sandbox import TemplateProblem
from workers.issuance.context import BatchContext
from workers.issuance.credential import Holder, Links, holder_values
from workers.issuance.delivery.email import Envelope, SmtpPool, build_message
from workers.issuance.delivery.sms import SmsClient
from workers.issuance.offers import OfferLink, Offers
from workers.issuance.outcomes import IssuanceFailure, permanent, template_failure
from workers.issuance.rendering import RenderedEmail
from workers.issuance.spans import group_spans, step_span


@dataclass(frozen=True)
class Invitation:
    """What to send to one holder; ``span`` is the job's, parent of the send spans."""

    context: BatchContext
    holder: Holder
    links: Links
    due: frozenset[Medium]  # the batch's mediums not sent to this holder yet
    span: Span
    # The step of the batch's reminder schedule this message is (0: the invitation itself).
    reminder_step: int = 0


@dataclass(frozen=True)
class Delivery:
    """What an invitation achieved: the mediums sent now, and the failure that counts."""

    sent: frozenset[Medium]
    failure: IssuanceFailure | None


def offer_values(offer: OfferLink | None, medium: Medium) -> dict[str, str]:
    """The offer placeholders of one medium's message (over the record's other values).

    With a transaction code the links go by email and the code by SMS only, so that one
    intercepted message is not enough to obtain the credential: the SMS then loses the claim
    link too, as the claim page shows the offer.
    """
    if offer is None:
        return {OFFER_URL: "", TX_CODE: ""}
    if offer.tx_code is None:
        return {OFFER_URL: offer.offer_url, TX_CODE: ""}
    if medium is Medium.SMS:
        return {CLAIM_URL: "", OFFER_URL: "", TX_CODE: offer.tx_code}
    return {OFFER_URL: offer.offer_url, TX_CODE: ""}


OnSent = Callable[[uuid.UUID, uuid.UUID, Medium, str | None, int], Awaitable[None]]
"""Called with (tenant id, record id, medium, the provider's message id if it gave one, the
reminder step or 0) once the server accepted a send."""


async def _ignore(
    tenant_id: uuid.UUID,
    record_id: uuid.UUID,
    medium: Medium,
    message_id: str | None,
    reminder_step: int,
) -> None:
    return None


class Inviter:
    """Sends invitations through the worker's SMTP pool and SMS client (either may be off),
    rendered in the worker's render processes."""

    def __init__(
        self,
        settings: Settings,
        smtp: SmtpPool | None,
        sms: SmsClient | None,
        renderer: Renderer,
        offers: Offers | None = None,
        on_sent: OnSent = _ignore,
    ) -> None:
        """``offers`` fills the offer placeholders (empty without it); ``on_sent`` hears of every
        send the server accepted."""
        self._on_sent = on_sent
        self._sender = settings.smtp_from
        # Each email's envelope sender names its record (VERP), so its bounce finds it.
        self._bounce = bounce_identity(settings)
        self._smtp_port = settings.smtp_port
        self._smtp = smtp
        self._sms = sms
        self._renderer = renderer
        self._sends = asyncio.Semaphore(settings.worker_concurrency)
        self._offers = offers

    async def send(self, invitation: Invitation) -> Delivery:
        [delivery] = await self.send_all([invitation])
        return delivery

    async def send_all(self, invitations: Sequence[Invitation]) -> list[Delivery]:
        """Render every message of the invitations in one request per tenant, then send them
        concurrently; a delivery per invitation, in order."""
        messages = [self._messages(invitation) for invitation in invitations]
        await self._render(invitations, messages)
        return list(
            await asyncio.gather(
                *(self._deliver(i, m) for i, m in zip(invitations, messages, strict=True))
            )
        )

    def _messages(self, invitation: Invitation) -> dict[Medium, _Message]:
        """The invitation's messages to render, or the failure that stops each before."""
        # The day the invitation goes out: a retried one may be sent days after issue.
        values = holder_values(
            invitation.context, invitation.holder, invitation.links, datetime.now(UTC).date()
        )
        offer = None
        if self._offers is not None:
            offer = self._offers.link(
                invitation.context,
                invitation.holder.record_id,
                invitation.links.claim_token,
                invitation.links.offer_generation,
            )
        messages: dict[Medium, _Message] = {}
        context, holder = invitation.context, invitation.holder
        if Medium.EMAIL in invitation.due:
            if self._smtp is not None and context.email is not None and holder.email:
                values_email = values | offer_values(offer, Medium.EMAIL)
                messages[Medium.EMAIL] = _code_message(
                    context.email.job(values_email), context.tenant_id, invitation.links
                )
            else:
                problem = "the record has no email address or template"
                messages[Medium.EMAIL] = _Message(None, permanent("EMAIL_UNAVAILABLE", problem))
        if Medium.SMS in invitation.due:
            if self._sms is not None and context.sms is not None and holder.phone:
                values_sms = values | offer_values(offer, Medium.SMS)
                messages[Medium.SMS] = _code_message(
                    TextJob((context.sms,), values_sms), context.tenant_id, invitation.links
                )
            else:
                problem = "the record has no phone number or template"
                messages[Medium.SMS] = _Message(None, permanent("SMS_UNAVAILABLE", problem))
        return messages

    async def _render(
        self, invitations: Sequence[Invitation], messages: Sequence[dict[Medium, _Message]]
    ) -> None:
        """Render the messages that have a job, per tenant, setting each one's outcome."""
        by_tenant: dict[uuid.UUID, list[tuple[Span, Medium, _Message]]] = {}
        for invitation, by_medium in zip(invitations, messages, strict=True):
            for medium, message in by_medium.items():
                if message.job is not None:
                    entry = (invitation.span, medium, message)
                    by_tenant.setdefault(invitation.context.tenant_id, []).append(entry)
        for tenant, entries in by_tenant.items():
            emails = [span for span, medium, _ in entries if medium is Medium.EMAIL]
            texts = [span for span, medium, _ in entries if medium is Medium.SMS]
            jobs = [message.job for _, _, message in entries if message.job is not None]
            with group_spans("render email", emails), group_spans("render sms", texts):
                results = await self._renderer.render(str(tenant), jobs)
            for (_, _, message), result in zip(entries, results, strict=True):
                if isinstance(result, TemplateProblem):
                    message.failure = template_failure(result.code, str(result))
                elif shows_links((t for t in result if isinstance(t, str)), message.secrets):
                    message.failure = template_failure(
                        CODE_WITH_LINK,
                        "the rendered message holds the link to the offer beside the wallet "
                        "code: not sent",
                    )
                else:
                    message.rendered = result

    async def _deliver(self, invitation: Invitation, messages: dict[Medium, _Message]) -> Delivery:
        mediums = [m for m in (Medium.EMAIL, Medium.SMS) if m in messages]
        senders = {Medium.EMAIL: self._send_email, Medium.SMS: self._send_sms}
        results = await asyncio.gather(
            *(_timed(m, senders[m](invitation, messages[m])) for m in mediums),
            return_exceptions=True,
        )
        sent: set[Medium] = set()
        failures: list[IssuanceFailure] = []
        for medium, result in zip(mediums, results, strict=True):
            if isinstance(result, IssuanceFailure):
                failures.append(result)
                INVITATION_FAILURES.add(
                    1,
                    {"credbatch.invitation.channel": _CHANNELS[medium], "error.type": result.code},
                )
            elif isinstance(result, BaseException):
                raise result
            else:
                sent.add(medium)
        # A permanent failure outweighs a transient one (retrying cannot make it succeed),
        # and a transient one a throttle (the attempt counts when something really failed).
        chosen = (
            [f for f in failures if not f.transient]
            or [f for f in failures if f.throttle is None]
            or failures
        )
        return Delivery(frozenset(sent), chosen[0] if chosen else None)

    async def _send_email(self, invitation: Invitation, message: _Message) -> None:
        rendered = message.outcome()
        address = invitation.holder.email
        assert self._smtp is not None and address
        email = RenderedEmail.of(rendered)
        context = invitation.context
        envelope_sender = self._sender
        if self._bounce is not None:
            key, domain = self._bounce
            holder = invitation.holder
            envelope_sender = verp.address(key, domain, holder.record_id, holder.email_send)
        envelope = Envelope(
            envelope_sender,
            address,
            build_message(
                sender=self._sender,
                recipient=address,
                subject=email.subject,
                text=email.text,
                html=email.html,
                sender_name=context.profile.email_sender_name or context.display.name(),
                reply_to=context.profile.reply_to,
            ),
        )
        async with self._sends:
            with step_span("smtp send", invitation.span, **{"network.peer.port": self._smtp_port}):
                await self._smtp.send(envelope)
        await self._on_sent(
            invitation.context.tenant_id,
            invitation.holder.record_id,
            Medium.EMAIL,
            None,
            invitation.reminder_step,
        )

    async def _send_sms(self, invitation: Invitation, message: _Message) -> None:
        [body] = message.outcome()
        phone = invitation.holder.phone
        assert self._sms is not None and phone and isinstance(body, str)
        async with self._sends:
            with step_span("sms send", invitation.span):
                sender = invitation.context.profile.sms_sender_id or None
                sid = await self._sms.send(phone, body, sender=sender)
        await self._on_sent(
            invitation.context.tenant_id,
            invitation.holder.record_id,
            Medium.SMS,
            sid,
            invitation.reminder_step,
        )


@dataclass
class _Message:
    """One medium's message of an invitation: its render job, then what rendering gave.

    ``secrets`` are what its rendered text must not hold (those of a message carrying the
    wallet code: the claim token and the offer's pre-authorized code).
    """

    job: TextJob | None
    failure: IssuanceFailure | None = None
    rendered: Rendered | None = None
    secrets: tuple[str, ...] = ()

    def outcome(self) -> tuple[str, ...]:
        """The rendered texts; raises the failure that stopped the message before sending."""
        if self.failure is not None:
            raise self.failure
        assert isinstance(self.rendered, tuple)
        return self.rendered


def _code_message(job: TextJob, tenant_id: uuid.UUID, links: Links) -> _Message:
    """The message of ``job``. When its values carry the wallet code (the SMS of a batch that
    asks for one), it is refused if its templates could show a link beside the code, and
    otherwise rendered to be checked for the links' secrets."""
    if not job.values.get(TX_CODE):
        return _Message(job)
    clash = links_beside_code(job.templates)
    if clash:
        shown = " and ".join(f"`{name}`" for name in clash)
        problem = f"the template can show `{TX_CODE}` with {shown}: not sent"
        return _Message(None, template_failure(CODE_WITH_LINK, problem))
    secrets = (links.claim_token, pre_authorized_code(tenant_id, links.claim_token))
    return _Message(job, secrets=secrets)


_CHANNELS = {Medium.EMAIL: "email", Medium.SMS: "sms"}


async def _timed(medium: Medium, send: Awaitable[None]) -> None:
    """Await one send, recording how long it took whether it succeeded or not."""
    started = time.perf_counter()
    try:
        await send
    finally:
        INVITATION_DURATION.record(
            time.perf_counter() - started, {"credbatch.invitation.channel": _CHANNELS[medium]}
        )
