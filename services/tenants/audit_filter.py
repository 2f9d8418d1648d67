"""The ListAuditEvents ``filter``: the fields the audit trail supports.

Conditions joined by ``AND`` (the grammar is ``credbatch.filtering``'s): ``occur_time``
compared (``<``, ``<=``, ``>``, ``>=``) with a quoted RFC 3339 time; ``actor = "s"``, ``action =
"batch.cancel"``, ``resource = "batches/{id}"`` and ``outcome = "OK"``. Every condition must
hold (``action = A AND action = B`` matches nothing, as AIP-160 says). An unknown action is
refused, naming the vocabulary, so that a typo does not silently match nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from credbatch import filtering
from credbatch.audit import Action
from credbatch.filtering import Condition, invalid

_EQUALITY_FIELDS = ("actor", "action", "resource", "outcome")


@dataclass(frozen=True)
class TimeBound:
    """One ``occur_time`` comparison: ``occur_time <op> at``."""

    op: str  # one of <, <=, >, >=
    at: datetime


@dataclass(frozen=True)
class AuditFilter:
    """What a page of the audit trail is restricted to (empty: no restriction)."""

    actors: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()
    resources: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    occur_time: tuple[TimeBound, ...] = ()


@dataclass
class _Found:
    actors: list[str] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    occur_time: list[TimeBound] = field(default_factory=list)


def _action(value: str) -> Action:
    try:
        return Action(value)
    except ValueError:
        allowed = ", ".join(a.value for a in Action)
        raise invalid(f"unknown action {value!r}; use one of {allowed}") from None


def _condition(found: _Found, condition: Condition) -> None:
    name, op, value = condition.field, condition.op, condition.value
    if name == "occur_time":
        if op not in filtering.TIME_OPS:
            raise invalid(f"operator `{op}` is not supported for occur_time; use < <= > >=")
        found.occur_time.append(TimeBound(op, filtering.time_value(name, value)))
        return
    if name not in _EQUALITY_FIELDS:
        raise invalid(
            f"field `{name}` is not supported; filter on occur_time, actor, action, resource "
            "or outcome"
        )
    if op != "=":
        raise invalid(f"operator `{op}` is not supported for {name}; use =")
    if name == "actor":
        found.actors.append(value)
    elif name == "action":
        found.actions.append(_action(value))
    elif name == "resource":
        found.resources.append(value)
    else:
        found.outcomes.append(value)


def parse_filter(text: str) -> AuditFilter:
    """Parse a ListAuditEvents filter; an empty filter matches every entry of the tenant."""
    found = _Found()
    for condition in filtering.conditions(text):
        _condition(found, condition)
    return AuditFilter(
        actors=tuple(found.actors),
        actions=tuple(found.actions),
        resources=tuple(found.resources),
        outcomes=tuple(found.outcomes),
        occur_time=tuple(found.occur_time),
    )
