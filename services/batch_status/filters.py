"""The ListBatches ``filter``: the fields the upload history supports.

Conditions joined by ``AND`` (the grammar is ``credbatch.filtering``'s): ``state = X``,
``creator = "s"``, ``department = "d"``, ``schema = "schemas/{id}"`` and ``create_time``
compared (``<``, ``<=``, ``>``, ``>=``) with an RFC 3339 time. Anything else (OR, NOT,
parentheses, other fields or operators) is refused with INVALID_ARGUMENT naming the part that
is not supported.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from credbatch import filtering, names
from credbatch.batches.model import BatchFilter, BatchState, TimeBound
from credbatch.errors import InvalidArgument
from credbatch.filtering import Condition, invalid

FIELD = filtering.FIELD
_EQUALITY_FIELDS = ("state", "creator", "department", "schema")


@dataclass
class _Conditions:
    states: list[BatchState] = field(default_factory=list)
    creators: list[str] = field(default_factory=list)
    departments: list[str] = field(default_factory=list)
    schema_ids: list[uuid.UUID] = field(default_factory=list)
    create_time: list[TimeBound] = field(default_factory=list)


def _state(value: str) -> BatchState:
    name = value.upper().removeprefix("BATCH_STATE_")
    try:
        return BatchState(name)
    except ValueError:
        allowed = ", ".join(f"BATCH_STATE_{s.value}" for s in BatchState)
        raise invalid(f"unknown state {value!r}; use one of {allowed}") from None


def _schema(value: str) -> uuid.UUID:
    try:
        return names.parse_name(value, names.SCHEMAS, FIELD)
    except InvalidArgument as error:
        # Reported as a problem of the filter, like every other part of it.
        raise invalid(f"schema {error.violations[0].description}") from None


def _condition(conditions: _Conditions, condition: Condition) -> None:
    name, op, value = condition.field, condition.op, condition.value
    if name == "create_time":
        if op not in filtering.TIME_OPS:
            raise invalid(f"operator `{op}` is not supported for create_time; use < <= > >=")
        conditions.create_time.append(TimeBound(op, filtering.time_value(name, value)))
        return
    if name not in _EQUALITY_FIELDS:
        raise invalid(
            f"field `{name}` is not supported; filter on state, creator, department, schema "
            "or create_time"
        )
    if op != "=":
        raise invalid(f"operator `{op}` is not supported for {name}; use =")
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
    conditions = _Conditions()
    for condition in filtering.conditions(text):
        _condition(conditions, condition)
    return BatchFilter(
        states=tuple(conditions.states),
        creators=tuple(conditions.creators),
        departments=tuple(conditions.departments),
        schema_ids=tuple(conditions.schema_ids),
        create_time=tuple(conditions.create_time),
    )
