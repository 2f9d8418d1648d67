"""Signatures as Standard Webhooks defines them, checked by the reference package."""

from __future__ import annotations

import base64
import time

from standardwebhooks import Webhook

from credbatch.webhooks import signing
from credbatch.webhooks.secrets import new_secret, secret_key


def test_new_secrets_are_whsec_base64_of_enough_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[len("whsec_") :])) >= 24
    assert secret != new_secret()


def test_signatures_verify_with_each_live_secret() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"type":"batch.completed"}'
    now = int(time.time())
    headers = signing.headers([new, old], "msg_1", now, body)
    assert headers["webhook-signature"].count("v1,") == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers) == {"type": "batch.completed"}
    assert len(secret_key(old)) == 32
