"""``POST /sms/status``: the SMS provider's delivery status callbacks.

Only the provider can make a valid one: the form must carry ``X-Twilio-Signature`` under the
account's token (``credbatch.delivery.twilio``), else 403 and nothing is read further. A
valid callback is recorded on the record whose invitation the provider named by its message
id (``public_sms_delivery``): 200 once recorded (or when it says nothing final, or its record
was purged: nothing is recorded, and the provider has no reason to try again), 404 when no
record holds that id (the provider's retry may find it once the send's stamp is written).
The callback is exempt from the per-client rate limit: the provider posts from few
addresses at the rate of the messages it delivers, and a forgery costs one HMAC.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import asyncpg
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from credbatch.delivery import twilio
from credbatch.metrics import BOUNCE_NOTIFICATIONS
from services.public.errors import error_response
from services.public.oid4vci_routes import _bounded_body

MAX_FORM = 16 * 1024
# Statuses before the final one: acknowledged, nothing recorded.
_EARLIER = frozenset({"accepted", "scheduled", "queued", "sending", "sent"})
_MAX_FIELDS = 64


def sms_status_routes(pool: asyncpg.Pool, public_url: str, token: str | None) -> list[Route]:
    """The route; without an account ``token`` every callback is refused (403)."""
    url = public_url + twilio.STATUS_PATH

    async def status(request: Request) -> Response:
        body = await _bounded_body(request, MAX_FORM)
        if body is None:
            return error_response(
                "invalid_request", f"The callback body exceeds {MAX_FORM} bytes", 413
            )
        try:
            pairs = parse_qsl(body.decode("utf-8"), max_num_fields=_MAX_FIELDS)
        except (UnicodeDecodeError, ValueError):
            pairs = None
        form = dict(pairs) if pairs is not None else None
        signed = request.headers.get(twilio.SIGNATURE_HEADER)
        if form is None or token is None or not twilio.verify(token, url, form, signed):
            _count("refused", "signature")
            return error_response(
                "forbidden", f"The {twilio.SIGNATURE_HEADER} signature does not match", 403
            )
        status_word = (form.get("MessageStatus") or form.get("SmsStatus") or "").lower()
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        state = twilio.STATES.get(status_word)
        if state is None:
            _count("ignored", status_word if status_word in _EARLIER else "other")
            return Response(status_code=200)
        if not sid or len(sid) > 64:
            return error_response("invalid_request", "MessageSid is required", 400)
        code = (form.get("ErrorCode") or "")[:32] or None
        async with pool.acquire() as conn:
            outcome: str = await conn.fetchval(
                "SELECT public_sms_delivery($1, $2, $3)", sid, state.value, code
            )
        _count(state.value.lower(), outcome)
        if outcome == "unknown":
            return error_response("not_found", "No invitation was sent with this MessageSid", 404)
        return Response(status_code=200)

    return [Route(twilio.STATUS_PATH, status, methods=["POST"])]


def _count(kind: str, outcome: str) -> None:
    BOUNCE_NOTIFICATIONS.add(
        1,
        {
            "credbatch.bounce.channel": "sms",
            "credbatch.bounce.kind": kind,
            "credbatch.bounce.outcome": outcome,
        },
    )
