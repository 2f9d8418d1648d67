"""Invitations: one email and/or SMS per issued record, for each medium not yet sent.

Sends run concurrently, at most ``worker_concurrency`` at a time per worker. A failed send
becomes an ``IssuanceFailure`` (transient or permanent) in the result, never an exception,
so one holder's bad address does not disturb the group; any other error is a bug or an
outage and propagates.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry.trace import Span

from credbatch.config import Settings
from credbatch.schema.model import Medium
from credbatch.templating.sandbox import TemplateProblem
from workers.issuance.context import BatchContext
from workers.issuance.credential import Holder, Links, holder_values
from workers.issuance.delivery.email import Envelope, SmtpPool, build_message
from workers.issuance.delivery.sms import SmsClient
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


class Inviter:
    """Sends invitations through the worker's SMTP pool and SMS client (either may be off)."""

    def __init__(self, settings: Settings, smtp: SmtpPool | None, sms: SmsClient | None) -> None:
        self._sender = settings.smtp_from
        self._smtp_port = settings.smtp_port
        self._smtp = smtp
        self._sms = sms
        self._sends = asyncio.Semaphore(settings.worker_concurrency)

    async def send(self, invitation: Invitation) -> Delivery:
        # The day the invitation goes out: a retried one may be sent days after issue.
        values = holder_values(
            invitation.context, invitation.holder, invitation.links, datetime.now(UTC).date()
        )
        mediums = [m for m in (Medium.EMAIL, Medium.SMS) if m in invitation.due]
        senders = {Medium.EMAIL: self._send_email, Medium.SMS: self._send_sms}
        results = await asyncio.gather(
            *(senders[m](invitation, values) for m in mediums), return_exceptions=True
        )
        sent: set[Medium] = set()
        failures: list[IssuanceFailure] = []
        for medium, result in zip(mediums, results, strict=True):
            if isinstance(result, IssuanceFailure):
                failures.append(result)
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
