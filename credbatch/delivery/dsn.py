"""Reading a bounce: what a delivery status notification says of the one recipient it reports.

Each invitation goes to one recipient from its own envelope sender, so every report that
reaches a VERP address concerns exactly one message to one recipient; which record is the
receiver's business (the address it arrived at), not this module's. Here only: delivered,
deferred or bounced, with the enhanced status code (RFC 3463) and the diagnostic.

Two shapes are read. An RFC 3464 ``multipart/report`` with a ``message/delivery-status``
part (Postfix, Exchange, Outlook.com, Sendmail, most others): its per-recipient fields
decide: ``Action`` delivered, relayed or expanded is a receipt (DELIVERED), delayed is
DEFERRED, failed is a bounce whose ``Status`` class decides between BOUNCED (5) and
DEFERRED (4, a soft bounce: the address may work another time). Without such a part (Exim,
Gmail, qmail, and Microsoft 365 reports whose status part is missing) the human-readable
text before the returned message is searched for an enhanced status code, then an SMTP
reply code, and its wording for a delay. A message that reads as neither (an out-of-office
reply, a challenge, spam sent to the bounce address) is no report: None.

Diagnostics come from remote systems and quote addresses and mailbox paths: every address is
replaced with ``<address>``, every file path with ``<path>``, and the text is cut to 500
characters before anyone stores it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message

from credbatch.delivery.model import DeliveryState

MAX_DIAGNOSTIC = 500
# How much of a text part is searched: the explanation comes first; far below it is the
# returned message, whose codes are not the report's.
_TEXT_WINDOW = 8192

_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_REPLY = re.compile(r"(?<!\d)([245]\d\d)(?=[ -])")
# A reply with its enhanced code ("550 5.1.10 ..."): the remote server's own words, which
# outrank a code the surrounding text only mentions ("see DSN 5.1.10").
_REPLY_ENHANCED = re.compile(r"(?<!\d)[245]\d\d[ -]([245]\.\d{1,3}\.\d{1,3})(?![\d.])")
_ADDRESS = re.compile(r"<?[^\s<>()\[\]\"',;:]+@[^\s<>()\[\]\"',;:]+>?")
# A file path may hold a mailbox's name (/var/spool/mail/jane); URLs keep theirs.
_PATH = re.compile(r"(?<![\w:/.])/[^\s\"']+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Where the returned message or its headers begin in the text of non-standard bounces.
_ORIGINAL = re.compile(
    r"^(-+ ?This is a copy of the message|-+ ?Original message|Original message headers"
    r"|--- Below this line is a copy|-+ ?The header of the original message"
    r"|-+ ?Original Message Follows)",
    re.IGNORECASE | re.MULTILINE,
)
_DELAYED_WORDS = re.compile(
    r"\bdelayed\b|has not yet been delivered|not been delivered yet|will (continue|keep) "
    r"(trying|to try)|will retry|still trying|warning message only",
    re.IGNORECASE,
)
_FAILED_WORDS = re.compile(
    r"could not be delivered|couldn'?t be delivered|delivery (has )?failed|failed permanently"
    r"|undeliver|permanent (error|failure)|wasn'?t able to deliver|unable to deliver"
    r"|returned to sender|delivery status notification \(failure\)|failure notice"
    r"|user unknown|no such user|does not exist|mailbox unavailable",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Report:
    """What a bounce or receipt says: the state, its enhanced status code, the diagnostic."""

    state: DeliveryState
    code: str | None
    diagnostic: str | None


def scrub(text: str | None) -> str | None:
    """``text`` on one line with every address and path replaced, at most 500 characters;
    None if empty."""
    if not text:
        return None
    clean = _PATH.sub("<path>", _ADDRESS.sub("<address>", text))
    clean = " ".join(_CONTROL.sub(" ", clean).split())
    return clean[:MAX_DIAGNOSTIC] or None


def parse(data: bytes) -> Report | None:
    """The report in a DSN's bytes, or None when the message is not a bounce or receipt."""
    message = message_from_bytes(data, policy=policy.compat32)
    for part in message.walk():
        if part.get_content_type() == "message/delivery-status":
            report = _from_status_part(part)
            if report is not None:
                return report
    return _from_text(message)


def _from_status_part(part: Message) -> Report | None:
    blocks = part.get_payload()
    if not isinstance(blocks, list):
        return None
    # The first block holds the per-message fields; the rest one recipient each. An
    # invitation has one recipient; should a report name several, the strongest news wins.
    reports = [r for r in (_from_fields(b) for b in blocks[1:]) if r is not None]
    if not reports:
        return None
    return max(reports, key=_strength)


def _strength(report: Report) -> int:
    return {
        DeliveryState.DEFERRED: 1,
        DeliveryState.DELIVERED: 2,
        DeliveryState.BOUNCED: 3,
    }.get(report.state, 0)


def _field(block: Message, name: str) -> str:
    value = block.get(name)
    return " ".join(str(value).split()) if value is not None else ""


def _from_fields(block: object) -> Report | None:
    if not isinstance(block, Message):
        return None
    action = _field(block, "Action").lower()
    status = _ENHANCED.search(_field(block, "Status"))
    diagnostic_field = _field(block, "Diagnostic-Code")
    # "smtp; 550 5.1.1 ...": the type before the semicolon says nothing to an issuer.
    diagnostic = scrub(diagnostic_field.partition(";")[2] or diagnostic_field)
    code = status.group(0) if status else None
    if code is None and diagnostic is not None:
        found = _ENHANCED.search(diagnostic)
        code = found.group(0) if found else None
    if action in ("delivered", "relayed", "expanded"):
        return Report(DeliveryState.DELIVERED, code, diagnostic)
    if action == "delayed":
        return Report(DeliveryState.DEFERRED, code, diagnostic)
    if action == "failed" or (not action and code is not None):
        if code is not None and code.startswith("4"):
            return Report(DeliveryState.DEFERRED, code, diagnostic)
        if code is not None and code.startswith("2"):
            return Report(DeliveryState.DELIVERED, code, diagnostic)
        return Report(DeliveryState.BOUNCED, code or "5.0.0", diagnostic)
    return None


def _explanation(message: Message) -> str:
    """The text a person would read first: the text/plain parts outside any returned
    message, each up to where the returned message starts."""
    texts: list[str] = []
    stack: list[Message] = [message]
    while stack:
        part = stack.pop(0)
        kind = part.get_content_type()
        if kind in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            continue
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                stack.extend(p for p in payload if isinstance(p, Message))
            continue
        if kind != "text/plain":
            continue
        raw = part.get_payload(decode=True)
        if not isinstance(raw, bytes):
            continue
        charset = part.get_content_charset() or "utf-8"
        try:
            text = raw[:_TEXT_WINDOW].decode(charset, "replace")
        except LookupError:
            text = raw[:_TEXT_WINDOW].decode("utf-8", "replace")
        cut = _ORIGINAL.search(text)
        texts.append(text[: cut.start()] if cut else text)
    return "\n".join(texts)


def _from_text(message: Message) -> Report | None:
    subject = str(message.get("Subject", ""))
    auto = str(message.get("Auto-Submitted", "")).lower()
    text = _explanation(message)
    replied = _REPLY_ENHANCED.search(text)
    enhanced = _ENHANCED.search(text)
    reply = _REPLY.search(text)
    delayed = bool(_DELAYED_WORDS.search(subject) or _DELAYED_WORDS.search(text))
    failed = bool(_FAILED_WORDS.search(subject) or _FAILED_WORDS.search(text))
    if not (delayed or failed):
        # An automatic reply (out of office) or anything else: not about delivery.
        return None
    if "auto-replied" in auto and enhanced is None and reply is None and not failed:
        return None
    line = _diagnostic_line(text, replied or enhanced or reply)
    if replied is not None:
        code = replied.group(1)
    elif enhanced is not None:
        code = enhanced.group(0)
    elif reply is not None:
        code = f"{reply.group(1)[0]}.0.0"
    else:
        code = None
    if code is not None and code.startswith("4"):
        return Report(DeliveryState.DEFERRED, code, line)
    if code is None and delayed and not failed:
        return Report(DeliveryState.DEFERRED, "4.0.0", line)
    if code is None or code.startswith("5"):
        return Report(DeliveryState.BOUNCED, code or "5.0.0", line)
    return None


def _diagnostic_line(text: str, found: re.Match[str] | None) -> str | None:
    """The paragraph that holds the code found, else None."""
    if found is None:
        return None
    start = text.rfind("\n\n", 0, found.start()) + 1
    end = text.find("\n\n", found.end())
    return scrub(text[start : end if end != -1 else len(text)])
