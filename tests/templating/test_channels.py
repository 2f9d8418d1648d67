"""What a message may show beside the wallet code, and the rules built on it."""

from __future__ import annotations

import pytest

from credbatch.batches.claim_mode import ClaimMode
from credbatch.catalog.defaults import (
    DEFAULT_EMAIL_HTML,
    DEFAULT_EMAIL_SUBJECT,
    DEFAULT_EMAIL_TEXT,
    DEFAULT_SMS_BODY,
)
from credbatch.schema.model import Medium
from credbatch.templating.channels import (
    CODE_IN_EMAIL,
    CODE_MISSING,
    CODE_WITH_LINK,
    LINK_MISSING,
    Message,
    asks_tx_code,
    batch_violations,
    links_beside_code,
    shows_links,
    template_violations,
    used_names,
)
from credbatch.templating.sandbox import CompiledTemplate


def sms(body: str, name: str = "Short") -> Message:
    return Message("SMS", "sms_template.body", name, {"sms_template.body": CompiledTemplate(body)})


def email(text: str, subject: str = "Hello", name: str = "Mail") -> Message:
    return Message(
        "email",
        "email_template",
        name,
        {
            "email_template.subject": CompiledTemplate(subject),
            "email_template.html_body": CompiledTemplate("<p>Hello</p>", html=True),
            "email_template.text_body": CompiledTemplate(text),
        },
    )


def clash(body: str) -> list[str]:
    return links_beside_code([CompiledTemplate(body)])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Claim {{ claim_url }}, code {{ tx_code }}", ["claim_url"]),
        ("{{ offer_url }} {{ tx_code }} {{ claim_url }}", ["claim_url", "offer_url"]),
        # A condition on anything but tx_code may go either way: both branches count.
        ("{% if full_name %}{{ claim_url }}{% else %}{{ tx_code }}{% endif %}", ["claim_url"]),
        ("{% if tx_code|length %}{{ tx_code }}{% else %}{{ claim_url }}{% endif %}", ["claim_url"]),
        # The link of the earlier default SMS sat outside its test on tx_code.
        (
            "Claim it: {{ claim_url }}{% if tx_code %} Wallet code: {{ tx_code }}"
            "{% elif offer_url %} Wallet: {{ offer_url }}{% endif %}",
            ["claim_url"],
        ),
        # Reassigning tx_code makes tests on it meaningless: read whole.
        (
            "{% set tx_code = claim_url %}{% if tx_code %}{{ tx_code }}{% else %}{{ claim_url }}"
            "{% endif %}",
            ["claim_url"],
        ),
        (
            "{% for tx_code in [1] %}{% endfor %}{% if tx_code %}{{ tx_code }}{% else %}"
            "{{ offer_url }}{% endif %}",
            ["offer_url"],
        ),
        # An alias set before the test still counts.
        (
            "{% set link = claim_url %}{% if tx_code %}{{ tx_code }} {{ link }}{% endif %}",
            ["claim_url"],
        ),
        ("{{ tx_code ~ (claim_url if score else '') }}", ["claim_url"]),
        # Separated by tests on tx_code: never both.
        ("{% if tx_code %}{{ tx_code }}{% else %}{{ claim_url }}{% endif %}", []),
        ("{% if not tx_code %}{{ claim_url }}{% else %}{{ tx_code }}{% endif %}", []),
        (
            "{% if full_name %}x{% elif tx_code %}{{ tx_code }}"
            "{% else %}{{ offer_url }}{% endif %}",
            [],
        ),
        ("{{ tx_code if tx_code else claim_url }}", []),
        ("{{ claim_url if not tx_code }}{{ tx_code }}", []),
        # A link without the code, or the code without a link.
        ("Claim it: {{ claim_url }}", []),
        ("Code {{ tx_code }} for {{ full_name }}", []),
        (DEFAULT_SMS_BODY, []),
    ],
)
def test_links_beside_the_code(body: str, expected: list[str]) -> None:
    assert clash(body) == expected


def test_used_names_by_presence_of_the_code() -> None:
    template = CompiledTemplate(
        "{{ issuer_name }}{% if tx_code %}{{ tx_code }}{% else %}{{ claim_url }}{% endif %}"
    )
    assert used_names(template, with_code=True) == {"issuer_name", "tx_code"}
    assert used_names(template, with_code=False) == {"issuer_name", "claim_url"}


def test_a_message_of_several_parts_counts_as_one() -> None:
    parts = [CompiledTemplate("Code {{ tx_code }}"), CompiledTemplate("{{ claim_url }}")]
    assert links_beside_code(parts) == ["claim_url"]


def test_an_sms_showing_the_code_with_a_link_is_refused_naming_both() -> None:
    [violation] = template_violations(sms("Claim {{ claim_url }} code {{ tx_code }}"))
    assert violation.field == "sms_template.body"
    assert violation.reason == CODE_WITH_LINK
    assert violation.description.startswith(
        "The SMS template `Short` can show `tx_code` together with `claim_url`: the wallet "
        "code must never travel with the link to its offer; show the link only where there is "
        "no code"
    )
    assert template_violations(sms(DEFAULT_SMS_BODY)) == []
    assert template_violations(sms("Claim it: {{ claim_url }}")) == []


def test_an_email_may_not_use_the_code_at_all() -> None:
    # Even apart from the links: an email never receives the code.
    message = email("{% if tx_code %}{{ tx_code }}{% endif %}", subject="Code {{ tx_code }}")
    violations = template_violations(message)
    assert [(v.field, v.reason) for v in violations] == [
        ("email_template.subject", CODE_IN_EMAIL),
        ("email_template.text_body", CODE_IN_EMAIL),
    ]
    assert violations[0].description.startswith(
        "The email template `Mail` uses `tx_code`: the wallet code never goes by email"
    )
    assert template_violations(email("{{ claim_url }} {{ offer_url }}")) == []


def test_a_template_without_a_name_is_still_described() -> None:
    [violation] = template_violations(sms("{{ claim_url }}{{ tx_code }}", name=" "))
    assert violation.description.startswith("The SMS template can show")


def default_email() -> Message:
    return Message(
        "email",
        "header.email_template",
        "Default invitation",
        {
            "s": CompiledTemplate(DEFAULT_EMAIL_SUBJECT),
            "h": CompiledTemplate(DEFAULT_EMAIL_HTML, html=True),
            "t": CompiledTemplate(DEFAULT_EMAIL_TEXT),
        },
    )


def test_the_defaults_fit_every_batch() -> None:
    for mode in ClaimMode:
        assert batch_violations(mode, default_email(), sms(DEFAULT_SMS_BODY)) == []
        assert batch_violations(mode, default_email(), None) == []
        assert batch_violations(mode, None, sms(DEFAULT_SMS_BODY)) == []


def test_a_code_batch_needs_the_code_in_the_sms_and_a_link_in_the_email() -> None:
    link_only = sms("Claim it: {{ claim_url }}", name="Link")
    no_link = email("Hello {{ full_name }}", name="Bare")
    violations = batch_violations(ClaimMode.OID4VCI, no_link, link_only)
    assert [(v.field, v.reason) for v in violations] == [
        ("sms_template.body", CODE_MISSING),
        ("email_template", LINK_MISSING),
    ]
    assert violations[0].description.startswith(
        "The SMS template `Link` does not use `tx_code`: a wallet batch that invites by email "
        "and SMS sends the link by email and the wallet code by SMS"
    )
    assert violations[1].description.startswith(
        "The email template `Bare` uses neither `claim_url` nor `offer_url`"
    )
    # The same templates fit a batch that asks for no code.
    assert batch_violations(ClaimMode.DOWNLOAD, no_link, link_only) == []
    assert batch_violations(ClaimMode.OID4VCI, None, link_only) == []


def test_a_code_only_under_a_test_that_never_holds_with_it_is_missing() -> None:
    hidden = sms("{% if not tx_code %}{{ tx_code }}{% endif %}{{ claim_url }}")
    [violation] = batch_violations(ClaimMode.OID4VCI, default_email(), hidden)
    assert violation.reason == CODE_MISSING


def test_a_batch_checks_each_template_s_own_rules_too() -> None:
    both = sms("{{ claim_url }} {{ tx_code }}")
    # Whatever the mediums: a stored template may predate the rules.
    [violation] = batch_violations(ClaimMode.DOWNLOAD, None, both)
    assert violation.reason == CODE_WITH_LINK


def test_only_wallet_batches_with_both_mediums_ask_for_a_code() -> None:
    both = {Medium.EMAIL, Medium.SMS}
    assert asks_tx_code(ClaimMode.OID4VCI, both)
    assert not asks_tx_code(ClaimMode.DOWNLOAD, both)
    assert not asks_tx_code(ClaimMode.OID4VCI, {Medium.EMAIL})
    assert not asks_tx_code(ClaimMode.OID4VCI, {Medium.SMS})


def test_shows_links_finds_any_secret_in_any_text() -> None:
    assert shows_links(["code 123456", "see TOKEN-1 here"], ["TOKEN-1", "PRE-2"])
    assert shows_links(["PRE-2"], ["TOKEN-1", "PRE-2"])
    assert not shows_links(["code 123456"], ["TOKEN-1", "PRE-2"])
    # An empty secret would be found in every text: it is none.
    assert not shows_links(["code 123456"], ["", ""])
