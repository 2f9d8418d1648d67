"""SMS invitations through a Twilio-style HTTP API, on one reused httpx client."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from credbatch.schema.model import Medium
from workers.issuance.outcomes import IssuanceFailure, Throttle, permanent, throttled, transient

# A Retry-After beyond this is read as this: a job is asked again at least this often, so a
# provider that mis-states its window (or a date far ahead) cannot park records for days.
MAX_RETRY_AFTER = 3600.0


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP-date), or None.

    A value that is neither, or is negative or not finite, counts as absent.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        seconds = max(seconds, 0.0)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _provider_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.text[:200]}"
    if isinstance(body, dict) and "message" in body:
        return f"{response.status_code} {body['message']}"
    return f"{response.status_code} {response.text[:200]}"


_SID = re.compile(r"^[A-Za-z0-9]{1,64}$")


class SmsClient:
    """Posts ``Messages.json`` (To in E.164, From, Body) with basic auth.

    With a ``status_callback`` URL the provider is asked to post each message's delivery
    status there (Twilio's ``StatusCallback``), naming the message by the id it answered.
    """

    def __init__(
        self,
        base_url: str,
        account: str,
        token: str,
        sender: str,
        *,
        timeout: float = 10.0,
        max_connections: int = 32,
        status_callback: str | None = None,
    ) -> None:
        self._status_callback = status_callback
        self._path = f"/2010-04-01/Accounts/{account}/Messages.json"
        self._sender = sender
        self._client = httpx.AsyncClient(
            base_url=base_url,
            auth=(account, token),
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    async def send(self, to: str, body: str, *, sender: str | None = None) -> str | None:
        """Send one SMS, from ``sender`` (an alphanumeric sender id) or the platform's number;
        the provider's id of the message (its ``sid``), if it gave a usable one.

        Raises:
            IssuanceFailure: throttled (429, with its Retry-After), transient (connection,
                timeout, 5xx) or permanent (other 4xx).
        """
        form = {"To": to, "From": sender or self._sender, "Body": body}
        if self._status_callback is not None:
            form["StatusCallback"] = self._status_callback
        try:
            response = await self._client.post(self._path, data=form)
        except httpx.TimeoutException:
            raise transient("SMS_TIMEOUT", "SMS provider timed out") from None
        except httpx.TransportError as error:
            raise transient(
                "SMS_UNAVAILABLE", f"SMS provider unavailable: {type(error).__name__}"
            ) from None
        if response.is_success:
            return _message_sid(response)
        raise _classify(response)

    async def close(self) -> None:
        await self._client.aclose()


def _message_sid(response: httpx.Response) -> str | None:
    """The accepted message's id; None when the answer has none (the send still counts as
    accepted, only its receipts cannot be matched)."""
    try:
        body = response.json()
    except ValueError:
        return None
    sid = body.get("sid") if isinstance(body, dict) else None
    return sid if isinstance(sid, str) and _SID.match(sid) else None


def _classify(response: httpx.Response) -> IssuanceFailure:
    message = _provider_message(response)
    if response.status_code == 429:
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        return throttled("SMS_THROTTLED", message, Throttle(Medium.SMS, retry_after))
    if response.status_code >= 500:
        return transient("SMS_TEMPORARY_FAILURE", message)
    return permanent("SMS_REJECTED", message)
