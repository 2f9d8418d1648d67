"""Invitations: one email and/or SMS per issued record, for each medium not yet sent.

Sends run concurrently, at most ``worker_concurrency`` at a time per worker. A failed send
becomes an ``IssuanceFailure`` (transient or permanent) in the result, never an exception,
so one holder's bad address does not disturb the group; any other error is a bug or an
outage and propagates. Each send the server accepted is reported to ``on_sent`` at once (the
worker records it, so a restarted worker does not send it again).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry.trace import Span

from credbatch.config import Settings
from credbatch.metrics import INVITATION_DURATION, INVITATION_FAILURES
from credbatch.schema.model import Medium
from credbatch.templating.placeholders import OFFER_URL, TX_CODE
from credbatch.templating.sandbox import TemplateProblem
from workers.issuance.context import BatchContext
from workers.issuance.credential import Holder, Links, holder_values
from workers.issuance.delivery.email import Envelope, SmtpPool, build_message
from workers.issuance.delivery.sms import SmsClient
from workers.issuance.offers import OfferLink, Offers
from workers.issuance.outcomes import IssuanceFailure, permanent, template_failure
from workers.issuance.spans import step_span


@dataclass(frozen=True)
class Invitation:
    """What to send to one holder; ``span`` is the job's, parent of the send spans."""

    context: BatchContext
    holder: Holder
    links: Links
    due: frozenset[Medium]  # the batch's mediums not sent to this holder yet
    span: Span


@dataclass(frozen=True)
class Delivery:
    """What an invitation achieved: the mediums sent now, and the failure that counts."""

    sent: frozenset[Medium]
    failure: IssuanceFailure | None


def offer_values(offer: OfferLink | None, medium: Medium) -> dict[str, str]:
    """The offer placeholders of one medium's message.

    With a transaction code the link goes by email and the code by SMS only, so that one
    intercepted message is not enough to obtain the credential.
    """
    if offer is None:
        return {OFFER_URL: "", TX_CODE: ""}
    if offer.tx_code is None:
        return {OFFER_URL: offer.offer_url, TX_CODE: ""}
    if medium is Medium.SMS:
        return {OFFER_URL: "", TX_CODE: offer.tx_code}
    return {OFFER_URL: offer.offer_url, TX_CODE: ""}


OnSent = Callable[[uuid.UUID, uuid.UUID, Medium], Awaitable[None]]
"""Called with (tenant id, record id, medium) once the server accepted a send."""


async def _ignore(tenant_id: uuid.UUID, record_id: uuid.UUID, medium: Medium) -> None:
    return None


class Inviter:
    """Sends invitations through the worker's SMTP pool and SMS client (either may be off)."""

    def __init__(
        self,
        settings: Settings,
        smtp: SmtpPool | None,
        sms: SmsClient | None,
        offers: Offers | None = None,
        on_sent: OnSent = _ignore,
    ) -> None:
        """``offers`` fills the offer placeholders (empty without it); ``on_sent`` hears of every
        send the server accepted."""
        self._on_sent = on_sent
        self._sender = settings.smtp_from
        self._smtp_port = settings.smtp_port
        self._smtp = smtp
        self._sms = sms
        self._sends = asyncio.Semaphore(settings.worker_concurrency)
        self._offers = offers

    async def send(self, invitation: Invitation) -> Delivery:
        # The day the invitation goes out: a retried one may be sent days after issue.
        values = holder_values(
            invitation.context, invitation.holder, invitation.links, datetime.now(UTC).date()
        )
        offer = None
        if self._offers is not None:
            offer = self._offers.link(
                invitation.context, invitation.holder.record_id, invitation.links.claim_token
            )
        mediums = [m for m in (Medium.EMAIL, Medium.SMS) if m in invitation.due]
        senders = {Medium.EMAIL: self._send_email, Medium.SMS: self._send_sms}
        results = await asyncio.gather(
            *(_timed(m, senders[m](invitation, values | offer_values(offer, m))) for m in mediums),
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

    async def _send_email(self, invitation: Invitation, values: dict[str, str]) -> None:
        template, address = invitation.context.email, invitation.holder.email
        if self._smtp is None or template is None or not address:
            raise permanent("EMAIL_UNAVAILABLE", "the record has no email address or template")
        with step_span("render email", invitation.span):
            try:
                rendered = template.render(values)
            except TemplateProblem as problem:
                raise template_failure(problem.code, str(problem)) from None
            message = Envelope(
                self._sender,
                address,
                build_message(
                    sender=self._sender,
                    recipient=address,
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                ),
            )
        async with self._sends:
            with step_span("smtp send", invitation.span, **{"network.peer.port": self._smtp_port}):
                await self._smtp.send(message)
        await self._on_sent(invitation.context.tenant_id, invitation.holder.record_id, Medium.EMAIL)

    async def _send_sms(self, invitation: Invitation, values: dict[str, str]) -> None:
        template, phone = invitation.context.sms, invitation.holder.phone
        if self._sms is None or template is None or not phone:
            raise permanent("SMS_UNAVAILABLE", "the record has no phone number or template")
        with step_span("render sms", invitation.span):
            try:
                body = template.render(values)
            except TemplateProblem as problem:
                raise template_failure(problem.code, str(problem)) from None
        async with self._sends:
            with step_span("sms send", invitation.span):
                await self._sms.send(phone, body)
        await self._on_sent(invitation.context.tenant_id, invitation.holder.record_id, Medium.SMS)


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
