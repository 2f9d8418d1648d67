"""Twilio-style SMS status callbacks: their signature and what their statuses mean.

The provider posts a form to the ``StatusCallback`` URL given with each message and signs it
in ``X-Twilio-Signature``: base64 of HMAC-SHA1, under the account's auth token, over the
full URL followed by every POST parameter's name and value, sorted by name
(https://www.twilio.com/docs/usage/security#validating-requests). The signed URL is the one
the provider was given, so the receiver checks against its own configured URL, never the
Host or path a proxy passed on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from credbatch.delivery.model import DeliveryState

STATUS_PATH = "/sms/status"
SIGNATURE_HEADER = "X-Twilio-Signature"

# The final statuses; queued, sending, sent, accepted and scheduled come before them and
# record nothing (the send was already recorded ACCEPTED).
STATES = {
    "delivered": DeliveryState.DELIVERED,
    # The carrier could not deliver it (unknown or unreachable handset): a hard bounce.
    "undelivered": DeliveryState.BOUNCED,
    # The provider could not send it at all.
    "failed": DeliveryState.FAILED,
}


def signature(token: str, url: str, params: Mapping[str, str]) -> str:
    """The ``X-Twilio-Signature`` of a POST of ``params`` to ``url``."""
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(token: str, url: str, params: Mapping[str, str], given: str | None) -> bool:
    """Whether ``given`` is the signature of ``params`` posted to ``url`` (constant time)."""
    if not given:
        return False
    return hmac.compare_digest(signature(token, url, params).encode(), given.encode())
