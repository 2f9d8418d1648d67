"""The built-in default invitation templates every tenant has, by the columns they fill.

They use system placeholders only, so they work with every schema, and keep the wallet code
apart from the links (credbatch.templating.channels), so they work with every batch.
"""

from __future__ import annotations

from collections.abc import Mapping

SYSTEM_USER = "system"
DEFAULT_TEMPLATE_NAME = "Default invitation"

DEFAULT_EMAIL_SUBJECT = "{{ issuer_name }} has issued you a credential"
DEFAULT_EMAIL_HTML = """<!doctype html>
<html>
  <body>
    <p>Hello,</p>
    <p>{{ issuer_name }} has issued you a verifiable credential.</p>
    <p><a href="{{ claim_url }}">Claim your credential</a></p>
    <p>If the link does not open, copy this address into your browser:<br>{{ claim_url }}</p>
    {% if offer_url %}<p><a href="{{ offer_url }}">Add it to your wallet</a></p>{% endif %}
  </body>
</html>
"""
DEFAULT_EMAIL_TEXT = """Hello,

{{ issuer_name }} has issued you a verifiable credential.

Claim it here: {{ claim_url }}
{% if offer_url %}
Add it to your wallet: {{ offer_url }}
{% endif %}"""
# When the batch asks for a wallet code (email and SMS), the SMS carries the code alone and
# the email the links; otherwise the SMS is the holder's only message and carries the links.
DEFAULT_SMS_BODY = (
    "{% if tx_code %}{{ issuer_name }} issued you a credential. Your wallet code: {{ tx_code }}"
    " (the link to claim it came by email)"
    "{% else %}{{ issuer_name }} issued you a credential. Claim it: {{ claim_url }}"
    "{% if offer_url %} Wallet: {{ offer_url }}{% endif %}{% endif %}"
)

EMAIL_DEFAULT: Mapping[str, str] = {
    "display_name": DEFAULT_TEMPLATE_NAME,
    "subject": DEFAULT_EMAIL_SUBJECT,
    "html_body": DEFAULT_EMAIL_HTML,
    "text_body": DEFAULT_EMAIL_TEXT,
}
SMS_DEFAULT: Mapping[str, str] = {
    "display_name": DEFAULT_TEMPLATE_NAME,
    "body": DEFAULT_SMS_BODY,
}

# The built-in reminder wording: what a batch with reminder days sends when it names no
# reminder templates. The same placeholders, and the same separation of the wallet code from
# the links, as the invitation defaults.
REMINDER_TEMPLATE_NAME = "Default reminder"
REMINDER_EMAIL_SUBJECT = "Reminder: {{ issuer_name }} has issued you a credential"
REMINDER_EMAIL_HTML = """<!doctype html>
<html>
  <body>
    <p>Hello,</p>
    <p>{{ issuer_name }} issued you a verifiable credential that you have not claimed yet.</p>
    <p><a href="{{ claim_url }}">Claim your credential</a></p>
    <p>If the link does not open, copy this address into your browser:<br>{{ claim_url }}</p>
    {% if offer_url %}<p><a href="{{ offer_url }}">Add it to your wallet</a></p>{% endif %}
  </body>
</html>
"""
REMINDER_EMAIL_TEXT = """Hello,

{{ issuer_name }} issued you a verifiable credential that you have not claimed yet.

Claim it here: {{ claim_url }}
{% if offer_url %}
Add it to your wallet: {{ offer_url }}
{% endif %}"""
REMINDER_SMS_BODY = (
    "{% if tx_code %}Reminder: {{ issuer_name }} issued you a credential. Your wallet code: "
    "{{ tx_code }} (the link to claim it came by email)"
    "{% else %}Reminder: {{ issuer_name }} issued you a credential. Claim it: {{ claim_url }}"
    "{% if offer_url %} Wallet: {{ offer_url }}{% endif %}{% endif %}"
)
