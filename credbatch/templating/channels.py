"""The wallet code never travels with the link to its offer.

An OpenID4VCI offer asks for a transaction code (``tx_code``) when its batch invites by email
and by SMS: the offer goes by email (``offer_url``, and ``claim_url``, whose page shows the
offer), the code by SMS, so that whoever reads one message alone cannot take the credential.
A batch with one medium has one message and no code.

This module decides, from a template's syntax alone, which placeholders a message may show
while it carries the code, so that a template is refused when it is created (and again when a
batch pairs it with its mediums) rather than a holder's message being sent with both. Only
tests on ``tx_code`` itself narrow it: in ``{% if tx_code %}A{% else %}B{% endif %}`` the
message with a code shows A and the one without shows B; every other condition may go either
way, so both of its branches count. A template that assigns ``tx_code`` (``{% set %}``, a loop
variable) is read whole. The worker relies on none of this alone: the message that carries the
code is never given the links, and its rendered text is checked for them before it is sent.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

from jinja2 import Environment, nodes

from credbatch.batches.claim_mode import ClaimMode
from credbatch.errors import FieldViolation
from credbatch.schema.model import Medium
from credbatch.templating.placeholders import CLAIM_URL, OFFER_URL, TX_CODE
from credbatch.templating.sandbox import CompiledTemplate

# The placeholders that lead to the offer: the offer itself, and the claim page that shows it.
LINKS = (CLAIM_URL, OFFER_URL)

CODE_WITH_LINK = "CODE_WITH_LINK"
CODE_IN_EMAIL = "CODE_IN_EMAIL"
CODE_MISSING = "CODE_MISSING"
LINK_MISSING = "LINK_MISSING"

_SUGGESTION = (
    "show the link only where there is no code, e.g. "
    "{% if tx_code %}Your wallet code: {{ tx_code }}{% else %}Claim it: {{ claim_url }}"
    "{% endif %}"
)
# Parsing only (the sandbox compiles and renders): the same syntax, no other extension.
_PARSER = Environment(autoescape=True)


def asks_tx_code(claim_mode: ClaimMode, mediums: Collection[Medium]) -> bool:
    """Whether a batch's offers ask for a transaction code: wallet batches that invite by
    email and SMS (the code then goes by SMS, the link by email)."""
    return claim_mode is ClaimMode.OID4VCI and {Medium.EMAIL, Medium.SMS} <= set(mediums)


def used_names(template: CompiledTemplate, *, with_code: bool) -> frozenset[str]:
    """The names the template may use when ``tx_code`` is non-empty (``with_code``) or empty.

    A superset: a name counts unless a test on ``tx_code`` rules its branch out.
    """
    return _used_names(template.source, with_code)


def links_beside_code(parts: Iterable[CompiledTemplate]) -> list[str]:
    """The link placeholders one message (all its ``parts``) may show along with its code;
    empty when it never shows both."""
    used = frozenset().union(*(used_names(part, with_code=True) for part in parts))
    if TX_CODE not in used:
        return []
    return [link for link in LINKS if link in used]


@dataclass(frozen=True)
class Message:
    """One message template as a check names it: its kind (``email``, ``SMS``), the request
    field that names it, its display name, and its compiled parts by request field."""

    kind: str
    field: str
    display_name: str
    parts: Mapping[str, CompiledTemplate]

    @property
    def label(self) -> str:
        named = f" `{self.display_name}`" if self.display_name.strip() else ""
        return f"The {self.kind} template{named}"


def template_violations(message: Message) -> list[FieldViolation]:
    """What keeps a new template from ever sending the code with the link, whatever batch
    uses it: an email never carries the code, and an SMS shows no link beside it."""
    if message.kind == "email":
        return [
            FieldViolation(
                field,
                f"{message.label} uses `{TX_CODE}`: the wallet code never goes by email, "
                "which carries the link to the offer (the code goes by SMS); remove it",
                CODE_IN_EMAIL,
            )
            for field, part in message.parts.items()
            if TX_CODE in part.placeholders
        ]
    clash = links_beside_code(message.parts.values())
    if not clash:
        return []
    return [
        FieldViolation(
            message.field,
            f"{message.label} can show `{TX_CODE}` together with "
            f"{' and '.join(f'`{link}`' for link in clash)}: the wallet code must never travel "
            f"with the link to its offer; {_SUGGESTION}",
            CODE_WITH_LINK,
        )
    ]


def batch_violations(
    claim_mode: ClaimMode, email: Message | None, sms: Message | None
) -> list[FieldViolation]:
    """What keeps a batch's templates from breaking the split, given its mediums (a template
    for each medium it invites by): the rules of each template, and, when the batch asks for
    a code, an SMS that carries it and an email that carries a link."""
    violations: list[FieldViolation] = []
    for message in (email, sms):
        if message is not None:
            violations += template_violations(message)
    mediums = [m for m, given in ((Medium.EMAIL, email), (Medium.SMS, sms)) if given is not None]
    if violations or not asks_tx_code(claim_mode, mediums):
        return violations
    assert email is not None and sms is not None
    if not any(TX_CODE in used_names(part, with_code=True) for part in sms.parts.values()):
        violations.append(
            FieldViolation(
                sms.field,
                f"{sms.label} does not use `{TX_CODE}`: a wallet batch that invites by email and "
                "SMS sends the link by email and the wallet code by SMS, so without it the "
                "holders never receive their code",
                CODE_MISSING,
            )
        )
    if not any(set(LINKS) & used_names(part, with_code=False) for part in email.parts.values()):
        violations.append(
            FieldViolation(
                email.field,
                f"{email.label} uses neither `{CLAIM_URL}` nor `{OFFER_URL}`: a wallet batch "
                "that invites by email and SMS sends the link by email (the SMS carries only "
                "the wallet code), so without one the holders never receive the offer",
                LINK_MISSING,
            )
        )
    return violations


def shows_links(texts: Iterable[str], secrets: Iterable[str]) -> bool:
    """Whether rendered ``texts`` hold any of ``secrets`` (the claim token, the offer's
    pre-authorized code: what the links are made of)."""
    wanted = [secret for secret in secrets if secret]
    return any(secret in text for text in texts for secret in wanted)


@functools.lru_cache(maxsize=512)
def _used_names(source: str, with_code: bool) -> frozenset[str]:
    tree = _PARSER.parse(source)
    assigned = any(
        name.name == TX_CODE and name.ctx != "load" for name in tree.find_all(nodes.Name)
    )
    # With tx_code reassigned, a test on it says nothing about the code: read it all.
    verdict = None if assigned else with_code
    return frozenset(_names(tree, verdict))


def _names(node: nodes.Node, with_code: bool | None) -> Iterator[str]:
    """The names ``node`` may use; ``with_code`` None prunes nothing."""
    if isinstance(node, nodes.Name):
        yield node.name
    elif isinstance(node, nodes.If) and with_code is not None:
        yield from _branches(node, with_code)
        return
    elif isinstance(node, nodes.CondExpr) and with_code is not None:
        taken = _code_test(node.test, with_code)
        if taken is None:
            yield from _names(node.test, with_code)
        if taken is not False:
            yield from _names(node.expr1, with_code)
        if taken is not True and node.expr2 is not None:
            yield from _names(node.expr2, with_code)
        return
    for child in node.iter_child_nodes():
        yield from _names(child, with_code)


def _branches(node: nodes.If, with_code: bool) -> Iterator[str]:
    """The names of an if / elif / else chain, skipping the branches a test on ``tx_code``
    rules out and everything after one it makes certain."""
    for branch in [node, *node.elif_]:
        taken = _code_test(branch.test, with_code)
        if taken is None:
            yield from _names(branch.test, with_code)
        if taken is not False:
            for child in branch.body:
                yield from _names(child, with_code)
        if taken is True:
            return
    for child in node.else_:
        yield from _names(child, with_code)


def _code_test(test: nodes.Node, with_code: bool) -> bool | None:
    """Whether ``test`` holds (True), fails (False) or may go either way (None), when
    ``tx_code`` is non-empty (``with_code``) or empty: only ``tx_code`` and ``not tx_code``
    are decided."""
    if isinstance(test, nodes.Name) and test.name == TX_CODE:
        return with_code
    if isinstance(test, nodes.Not):
        inner = _code_test(test.node, with_code)
        return None if inner is None else not inner
    return None
