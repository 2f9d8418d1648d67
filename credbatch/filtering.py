"""The AIP-160 subset every list ``filter`` of credbatch accepts: its grammar, not its fields.

A filter is conditions joined by ``AND``; a condition is ``field operator value``, the value
a bare word or a double-quoted string (``\\"`` and ``\\\\`` escape). OR, NOT, ``-``,
parentheses and the operators ``!=`` and ``:`` are refused with INVALID_ARGUMENT naming the
part that is not supported. Which fields and operators a list accepts, and what a value
means, is its own parser's business (``services.batch_status.filters``,
``services.tenants.audit_filter``); this module hands it the conditions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from credbatch.errors import FieldViolation, InvalidArgument

FIELD = "filter"
MAX_LENGTH = 2000
TIME_OPS = frozenset({"<", "<=", ">", ">="})
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op><=|>=|!=|=|<|>|:)
      | (?P<paren>[()])
      | (?P<word>[^\s"()=<>!:]+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Condition:
    """One ``field operator value`` of a filter; ``text`` as written, for messages."""

    field: str
    op: str
    value: str
    text: str


def invalid(description: str) -> InvalidArgument:
    """The INVALID_ARGUMENT of a filter problem, naming the ``filter`` field."""
    return InvalidArgument(
        f"invalid filter: {description}",
        reason="INVALID_FILTER",
        violations=[FieldViolation(FIELD, description, "INVALID_FILTER")],
    )


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise invalid(f"cannot read the filter at character {position + 1}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _unquote(kind: str, value: str) -> str:
    if kind == "string":
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _condition(term: list[tuple[str, str]]) -> Condition:
    text = " ".join(value for _, value in term)
    if len(term) != 3 or term[0][0] != "word" or term[1][0] != "op":
        raise invalid(f"`{text}` is not supported; write `field operator value`")
    (_, name), (_, op), (kind, raw) = term
    if kind not in ("word", "string"):
        raise invalid(f"`{text}` is not supported: the value must be a word or a quoted string")
    return Condition(name, op, _unquote(kind, raw), text)


def conditions(text: str) -> list[Condition]:
    """The conditions of a filter, in order; none for an empty one.

    Raises:
        InvalidArgument: naming ``filter``, when it is too long or leaves the subset.
    """
    if len(text) > MAX_LENGTH:
        raise invalid(f"the filter is longer than {MAX_LENGTH} characters")
    if not text.strip():
        return []
    found: list[Condition] = []
    term: list[tuple[str, str]] = []
    for kind, value in [*_tokens(text), ("word", "AND")]:
        if kind == "word" and value == "AND":
            if not term:
                raise invalid("`AND` must join two conditions")
            found.append(_condition(term))
            term = []
            continue
        if kind == "paren":
            raise invalid("parentheses are not supported; join conditions with AND")
        if (kind == "word" and value in ("OR", "NOT")) or value == "-":
            raise invalid(f"`{value}` is not supported; join conditions with AND")
        if kind == "op" and value in ("!=", ":"):
            raise invalid(f"operator `{value}` is not supported")
        term.append((kind, value))
    return found


def time_value(field: str, value: str) -> datetime:
    """An RFC 3339 time with its offset, for a comparison on ``field``."""
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(f"{field} needs an RFC 3339 time, got {value!r}") from None
    if at.tzinfo is None:
        raise invalid(f"{field} {value!r} needs a time zone offset (e.g. Z)")
    return at
