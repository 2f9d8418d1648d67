"""The price of every filter, test, method and global a template can call, arguments included.

The sandbox allows exactly the names in these tables (credbatch.templating.sandbox builds its
environment from them), so nothing is callable that has no price here. A price looks at the
call's input and arguments before the call runs and returns (build, work):

- build: the most characters the result's text form can take; the sandbox refuses the call
  when it exceeds the output limit (TEMPLATE_OUTPUT_TOO_LARGE), and charges the result after;
- work: about how many characters the call reads; it counts towards the time budget, whose
  clock is read as soon as enough work was done (not only every few hundred operations), so a
  loop of calls that each read a long text is stopped on time.

An argument no credential needs and an attack does is refused before the call, with a message
naming the limit (TEMPLATE_UNSAFE): `round`'s precision (Python computes 10 ** precision for
it, seconds of CPU for a precision of ten million), the characters `trim` and `strip` remove
(they search that set once per character of the text), `%`-style text formatting hidden in a
test (`'%999999999d' is odd`), a `truncate` length Jinja would only assert on.

Costs are upper bounds: case mapping may triple a text (`'ΐ'.upper()` is three characters),
HTML escaping makes one character at most five (`&#34;`), URL encoding at most twelve (a
four-byte character as `%XX` four times).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from credbatch.templating.budget import Budget
from credbatch.templating.problems import TEMPLATE_UNSAFE, TemplateProblem

Cost = tuple[int, int]
"""(build, work): characters the result may take, characters the call reads."""
Price = Callable[..., Cost]
"""Called as price(budget, input, *arguments, **keywords) with the call's own signature."""

MAX_RANGE = 1000
"""Items a `range()` may have: three nested loops of it are already a billion steps."""
MAX_STRIP_CHARS = 64
"""Distinct characters `trim` / `strip` may remove: each is searched for once per character."""
CASE_GROWTH = 3
ESCAPE_GROWTH = 5
URL_GROWTH = 12
_FREE: Cost = (0, 1)


def refuse(message: str) -> TemplateProblem:
    return TemplateProblem(TEMPLATE_UNSAFE, message)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float)


def _is_whole(value: Any) -> bool:
    return isinstance(value, int)


def _read(budget: Budget, value: Any) -> Cost:
    """A call that reads its input once and builds nothing bigger than a number."""
    return (0, budget.weight(value))


def _copy(budget: Budget, value: Any) -> Cost:
    """A call whose result is at most its input's text form."""
    weight = budget.weight(value)
    return (weight, weight)


def _grows(factor: int) -> Price:
    def price(budget: Budget, value: Any) -> Cost:
        weight = budget.weight(value)
        return (weight * factor, weight)

    return price


def _free(budget: Budget, *args: Any, **kwargs: Any) -> Cost:
    return _FREE


def round_digits(budget: Budget) -> int:
    """The most decimal digits a number in a template can have (78 for 256 bits)."""
    return len(str(1 << budget.limits.max_int_bits))


# --- filters ---------------------------------------------------------------------------


def _default(budget: Budget, value: Any, default_value: Any = "", boolean: bool = False) -> Cost:
    return _FREE


def _float(budget: Budget, value: Any, default: Any = 0.0) -> Cost:
    return _read(budget, value)


def _int(budget: Budget, value: Any, default: Any = 0, base: Any = 10) -> Cost:
    # The result is charged (and its size checked) after: parsing is linear in the text.
    return _read(budget, value)


def _round(budget: Budget, value: Any, precision: Any = 0, method: Any = "common") -> Cost:
    digits = round_digits(budget)
    if not _is_whole(precision):
        raise refuse("`round`: the precision is a whole number")
    # Python computes 10 ** abs(precision) to round an integer: refused beyond any digit a
    # number here can have, where the result is the number itself or zero anyway.
    if abs(precision) > digits:
        raise refuse(f"`round`: the precision is between -{digits} and {digits}")
    if method not in ("common", "ceil", "floor"):
        raise refuse("`round`: the method is 'common', 'ceil' or 'floor'")
    if not _is_number(value):
        raise refuse("`round` rounds numbers only")
    return _FREE


def _chars_cost(budget: Budget, text: Any, chars: Any, name: str) -> Cost:
    weight = budget.weight(text)
    if chars is None:
        return (weight, weight)
    if not isinstance(chars, str):
        raise refuse(f"`{name}`: the characters to remove are given as text")
    if len(chars) > MAX_STRIP_CHARS:
        raise refuse(f"`{name}` removes at most {MAX_STRIP_CHARS} different characters")
    return (weight, weight * max(1, len(chars)))


def _trim(budget: Budget, value: Any, chars: Any = None) -> Cost:
    return _chars_cost(budget, value, chars, "trim")


def _truncate(
    budget: Budget,
    s: Any,
    length: Any = 255,
    killwords: Any = False,
    end: Any = "...",
    leeway: Any = None,
) -> Cost:
    if not isinstance(end, str):
        raise refuse("`truncate`: the end is text")
    if not _is_whole(length) or length < len(end):
        raise refuse("`truncate`: the length is a whole number at least as long as the end")
    if leeway is not None and (not _is_whole(leeway) or leeway < 0):
        raise refuse("`truncate`: the leeway is a whole number, zero or more")
    weight = budget.weight(s)
    return (weight + budget.weight(end), weight)


def _urlencode(budget: Budget, value: Any) -> Cost:
    weight = budget.weight(value)
    # Text is encoded as UTF-8 bytes, each `%XX` at worst; ASCII only ever triples.
    growth = 3 if isinstance(value, str) and value.isascii() else URL_GROWTH
    return (weight * growth, weight)


def _join(budget: Budget, value: Any, d: Any = "", attribute: Any = None) -> Cost:
    # The items are priced one by one as they are joined (sandbox._bounded_join).
    if not isinstance(d, str):
        raise refuse("`join`: the separator is text")
    if attribute is not None:
        raise refuse("`join` takes no attribute here")
    return (0, budget.weight(value))


FILTER_PRICES: Mapping[str, Price] = {
    "abs": _free,
    "capitalize": _grows(CASE_GROWTH),
    "count": _free,
    "d": _default,
    "default": _default,
    "e": _grows(ESCAPE_GROWTH),
    "escape": _grows(ESCAPE_GROWTH),
    "first": _read,
    "float": _float,
    "int": _int,
    "join": _join,
    "last": _read,
    "length": _free,
    "lower": _grows(CASE_GROWTH),
    "reverse": _copy,
    "round": _round,
    "string": _copy,
    "striptags": _copy,
    "title": _grows(CASE_GROWTH),
    "trim": _trim,
    "truncate": _truncate,
    "upper": _grows(CASE_GROWTH),
    "urlencode": _urlencode,
    "wordcount": _read,
}


# --- tests (`x is odd`) -------------------------------------------------------------------


def _numbers_only(name: str) -> Price:
    # `value % 2` on text is %-formatting: `'%999999999d' is odd` builds gigabytes.
    def price(budget: Budget, value: Any, *args: Any) -> Cost:
        if not all(_is_number(v) for v in (value, *args)):
            raise refuse(f"`{name}` tests numbers only")
        return _FREE

    return price


def _one(budget: Budget, value: Any) -> Cost:
    return _FREE


def _two(budget: Budget, value: Any, other: Any) -> Cost:
    return _FREE


def _text_form(budget: Budget, value: Any) -> Cost:
    # `lower` / `upper` test the text form, built first (a list's is all of its items).
    return _copy(budget, value)


def _compared(budget: Budget, left: Any, right: Any) -> Cost:
    return (0, budget.compared(left, right))


TEST_PRICES: Mapping[str, Price] = {
    "boolean": _one,
    "callable": _one,
    "defined": _one,
    "divisibleby": _numbers_only("divisibleby"),
    "escaped": _one,
    "even": _numbers_only("even"),
    "false": _one,
    "filter": _read,
    "float": _one,
    "in": _compared,
    "integer": _one,
    "iterable": _one,
    "lower": _text_form,
    "mapping": _one,
    "none": _one,
    "number": _one,
    "odd": _numbers_only("odd"),
    "sameas": _two,
    "sequence": _one,
    "string": _one,
    "test": _read,
    "true": _one,
    "undefined": _one,
    "upper": _text_form,
    **{
        name: _compared
        for name in (
            "!=",
            "<",
            "<=",
            "==",
            ">",
            ">=",
            "eq",
            "equalto",
            "ge",
            "greaterthan",
            "gt",
            "le",
            "lessthan",
            "lt",
            "ne",
        )
    },
}


# --- methods of text (`name.upper()`) and of the loop (`loop.cycle(...)`) -------------------


def _no_arguments(price: Price) -> Price:
    def priced(budget: Budget, text: str) -> Cost:
        return price(budget, text)

    return priced


def _strip(name: str) -> Price:
    def price(budget: Budget, text: str, chars: Any = None) -> Cost:
        return _chars_cost(budget, text, chars, name)

    return price


def _affix(budget: Budget, text: str, affix: Any, start: Any = None, end: Any = None) -> Cost:
    return (0, budget.weight(affix))


METHOD_PRICES: Mapping[str, Price] = {
    "capitalize": _no_arguments(_grows(CASE_GROWTH)),
    "endswith": _affix,
    "isalpha": _no_arguments(_read),
    "isdigit": _no_arguments(_read),
    "lower": _no_arguments(_grows(CASE_GROWTH)),
    "lstrip": _strip("lstrip"),
    "rstrip": _strip("rstrip"),
    "startswith": _affix,
    "strip": _strip("strip"),
    "title": _no_arguments(_grows(CASE_GROWTH)),
    "upper": _no_arguments(_grows(CASE_GROWTH)),
}


def _changed(budget: Budget, loop: Any, *values: Any) -> Cost:
    # Compares the values with the previous iteration's (kept alive as long as the loop).
    return (0, sum(budget.compared(value, value) for value in values))


LOOP_METHOD_PRICES: Mapping[str, Price] = {"changed": _changed, "cycle": _free}


# --- globals ---------------------------------------------------------------------------


def bounded_range(*args: Any) -> range:
    """`range()` of at most MAX_RANGE whole numbers."""
    if not 1 <= len(args) <= 3 or not all(_is_whole(arg) for arg in args):
        raise refuse("`range` takes one to three whole numbers")
    if len(args) == 3 and args[2] == 0:
        raise refuse("`range`: the step is not zero")
    result = range(*args)
    # len() of a range fails beyond a machine word: its length, computed as Python does.
    if max(0, -((result.start - result.stop) // result.step)) > MAX_RANGE:
        raise refuse(f"`range` is limited to {MAX_RANGE} items")
    return result


def _range(budget: Budget, *args: Any) -> Cost:
    return _FREE


GLOBAL_PRICES: Mapping[str, tuple[Callable[..., Any], Price]] = {
    "range": (bounded_range, _range),
}


# --- comparisons (`a == b`, `a in b`, chained) -------------------------------------------------

COMPARISONS: Mapping[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "in": lambda left, right: left in right,
    "notin": lambda left, right: left not in right,
}
