"""The ListBatches ``filter``: the AIP-160 subset the upload history supports.

Conditions joined by ``AND``: ``state = X``, ``creator = "s"``, ``department = "d"``,
``schema = "schemas/{id}"`` and ``create_time`` compared (``<``, ``<=``, ``>``, ``>=``) with an
RFC 3339 time. Anything else (OR, NOT, parentheses, other fields or operators) is refused with
INVALID_ARGUMENT naming the part that is not supported.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from credbatch import names
from credbatch.batches.model import BatchFilter, BatchState, TimeBound
from credbatch.errors import FieldViolation, InvalidArgument

FIELD = "filter"
_MAX_LENGTH = 2000
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op><=|>=|!=|=|<|>|:)
      | (?P<paren>[()])
      | (?P<word>[^\s"()=<>!:]+)
    )""",
    re.VERBOSE,
)
_EQUALITY_FIELDS = ("state", "creator", "department", "schema")
_TIME_OPS = frozenset({"<", "<=", ">", ">="})


@dataclass
class _Conditions:
    states: list[BatchState] = field(default_factory=list)
    creators: list[str] = field(default_factory=list)
    departments: list[str] = field(default_factory=list)
    schema_ids: list[uuid.UUID] = field(default_factory=list)
    create_time: list[TimeBound] = field(default_factory=list)


def _invalid(description: str) -> InvalidArgument:
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
            raise _invalid(f"cannot read the filter at character {position + 1}")
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _unquote(kind: str, value: str) -> str:
    if kind == "string":
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _state(value: str) -> BatchState:
    name = value.upper().removeprefix("BATCH_STATE_")
    try:
        return BatchState(name)
    except ValueError:
        allowed = ", ".join(f"BATCH_STATE_{s.value}" for s in BatchState)
        raise _invalid(f"unknown state {value!r}; use one of {allowed}") from None


def _schema(value: str) -> uuid.UUID:
    try:
        return names.parse_name(value, names.SCHEMAS, FIELD)
    except InvalidArgument as error:
        # Reported as a problem of the filter, like every other part of it.
        raise _invalid(f"schema {error.violations[0].description}") from None


def _time(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(f"create_time needs an RFC 3339 time, got {value!r}") from None
    if at.tzinfo is None:
        raise _invalid(f"create_time {value!r} needs a time zone offset (e.g. Z)")
    return at


def _condition(conditions: _Conditions, term: list[tuple[str, str]]) -> None:
    text = " ".join(value for _, value in term)
    if len(term) != 3 or term[0][0] != "word" or term[1][0] != "op":
        raise _invalid(f"`{text}` is not supported; write `field operator value`")
    (_, name), (_, op), (kind, raw) = term
    if kind not in ("word", "string"):
        raise _invalid(f"`{text}` is not supported: the value must be a word or a quoted string")
    value = _unquote(kind, raw)
    if name == "create_time":
        if op not in _TIME_OPS:
            raise _invalid(f"operator `{op}` is not supported for create_time; use < <= > >=")
        conditions.create_time.append(TimeBound(op, _time(value)))
        return
    if name not in _EQUALITY_FIELDS:
        raise _invalid(
            f"field `{name}` is not supported; filter on state, creator, department, schema "
            "or create_time"
        )
    if op != "=":
        raise _invalid(f"operator `{op}` is not supported for {name}; use =")
    if name == "state":
        conditions.states.append(_state(value))
    elif name == "creator":
        conditions.creators.append(value)
    elif name == "department":
        conditions.departments.append(value)
    else:
        conditions.schema_ids.append(_schema(value))


def parse_filter(text: str) -> BatchFilter:
    """Parse a ListBatches filter; an empty filter matches every visible batch."""
    if len(text) > _MAX_LENGTH:
        raise _invalid(f"the filter is longer than {_MAX_LENGTH} characters")
    if not text.strip():
        return BatchFilter()
    conditions = _Conditions()
    term: list[tuple[str, str]] = []
    for kind, value in [*_tokens(text), ("word", "AND")]:
        if kind == "word" and value == "AND":
            if not term:
                raise _invalid("`AND` must join two conditions")
            _condition(conditions, term)
            term = []
            continue
        if kind == "paren":
            raise _invalid("parentheses are not supported; join conditions with AND")
        if (kind == "word" and value in ("OR", "NOT")) or value == "-":
            raise _invalid(f"`{value}` is not supported; join conditions with AND")
        if kind == "op" and value in ("!=", ":"):
            raise _invalid(f"operator `{value}` is not supported")
        term.append((kind, value))
    return BatchFilter(
        states=tuple(conditions.states),
        creators=tuple(conditions.creators),
        departments=tuple(conditions.departments),
        schema_ids=tuple(conditions.schema_ids),
        create_time=tuple(conditions.create_time),
    )
