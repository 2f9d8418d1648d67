"""What one render may spend: time, text and number sizes.

A time budget alone cannot stop a single operation that runs in C for hours
(`9 ** 64 ** 64 ** 16`), nor one that allocates gigabytes at once (`[big] * 1000 | string`).
So every operation that can make a value grow is priced here before it runs, from its
operands, and charged after it ran, from its result:
- integers: `**` and `*` are refused when the result would pass ``max_int_bits``
  (bit_length(base) * exponent, the sum of bit lengths), and every arithmetic result and
  every filter result is checked against it;
- text and containers: a value's *weight* is the length its text form can reach (nested
  containers counted through, each shared part once), so `| string` of a list of lists or
  `[a] * 1000` is priced before Python builds it; no single built value may exceed the
  output limit and all of them together (including every `{{ }}` output, which is what
  captured buffers are made of) may not exceed ``BUILD_FACTOR`` times it;
- time: every operation ticks, and the clock is read every few hundred ticks; calls that read
  a long text also report that work (credbatch.templating.pricing), and the clock is read as
  soon as ``CLOCK_EVERY_WORK`` characters were read since the last reading, so a loop of
  cheap-looking calls on a long text is stopped on time too.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from credbatch.templating.problems import (
    TEMPLATE_NUMBER_TOO_LARGE,
    TEMPLATE_OUTPUT_TOO_LARGE,
    TEMPLATE_TIMEOUT,
    TEMPLATE_UNSAFE,
    TemplateProblem,
)

# Intermediate values (a `~` before a `| upper`, a set variable) may together be a few times
# the output; a render that builds more than this is not making a credential.
BUILD_FACTOR = 8
# Reading this many characters takes well under a millisecond: the clock is read at least
# that often, however few operations the work took.
CLOCK_EVERY_WORK = 200_000
_SCALAR_WEIGHT = 24


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of one template: source size, output size, render time and integer size."""

    max_source_chars: int = 100_000
    max_output_chars: int = 500_000
    max_seconds: float = 0.25
    # 2**256 is 78 decimal digits: more than any amount, count or date a credential holds.
    max_int_bits: int = 256


class Budget:
    """The running account of one render (or of one compile-time constant check)."""

    __slots__ = (
        "_weights",
        "built",
        "deadline",
        "limits",
        "max_built",
        "max_chars",
        "ticks",
        "unclocked",
    )

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.max_seconds
        self.max_chars = limits.max_output_chars
        self.max_built = limits.max_output_chars * BUILD_FACTOR
        self.built = 0
        self.ticks = 0
        self.unclocked = 0
        # id -> (the container, kept alive so its id is not reused during the render; weight)
        self._weights: dict[int, tuple[Any, int]] = {}

    def tick(self) -> None:
        self.ticks += 1
        # Reading the clock every time would double the cost of a tight loop.
        if not self.ticks & 0xFF:
            self._check_clock()

    def work(self, characters: int) -> None:
        """Account for a call that read about this many characters."""
        self.unclocked += characters
        if self.unclocked >= CLOCK_EVERY_WORK:
            self.unclocked = 0
            self._check_clock()

    def _check_clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateProblem(TEMPLATE_TIMEOUT, "the template takes too long to render")

    def weight(self, value: Any) -> int:
        """The length the text form of value can reach (a close upper bound)."""
        if isinstance(value, str):
            return len(value) + 2
        if isinstance(value, bool) or value is None:
            return 5
        if isinstance(value, int):
            return value.bit_length() // 3 + 2
        if isinstance(value, range):
            return len(value) * (len(str(value.stop)) + 2)
        if not isinstance(value, list | tuple | dict | set | frozenset):
            return _SCALAR_WEIGHT
        remembered = self._weights.get(id(value))
        if remembered is not None:
            return remembered[1]
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        total = 2
        for item in items:
            total += self.weight(item) + 2
        # Remembered, so a structure sharing one part many times
        # (`{% set b = [a, a, a] %}{% set c = [b, b, b] %}`) is walked once per part.
        self._weights[id(value)] = (value, total)
        return total

    def ensure_fits(self, weight: int, what: str) -> None:
        """Refuse to build a value of this weight."""
        if weight > self.max_chars:
            raise TemplateProblem(
                TEMPLATE_OUTPUT_TOO_LARGE,
                f"{what} would be longer than {self.max_chars} characters",
            )

    def compared(self, left: Any, right: Any) -> int:
        """The work of comparing left and right (or looking for one in the other); refuses
        operands longer than the output limit (a list holding one long text many times)."""
        left_weight, right_weight = self.weight(left), self.weight(right)
        self.ensure_fits(max(left_weight, right_weight), "a compared value")
        return left_weight + right_weight

    def charge(self, value: Any, what: str = "a value") -> Any:
        """Account for a value just built; returns it."""
        if isinstance(value, int) and not isinstance(value, bool):
            self.check_int(value)
            return value
        if isinstance(value, str | list | tuple | dict):
            weight = self.weight(value)
            self.ensure_fits(weight, what)
            self.spend(weight)
        return value

    def spend(self, weight: int) -> None:
        self.work(weight)
        self.built += weight
        if self.built > self.max_built:
            raise TemplateProblem(
                TEMPLATE_OUTPUT_TOO_LARGE,
                f"the template builds more than {self.max_built} characters of text",
            )

    def check_int(self, value: int) -> None:
        if value.bit_length() > self.limits.max_int_bits:
            raise _number_too_large(self.limits.max_int_bits)

    def arithmetic(self, operator: str, left: Any, right: Any) -> Any:
        """left operator right, refused before it runs when it would break a limit."""
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise TemplateProblem(TEMPLATE_UNSAFE, "exponents are limited to 64")
        if operator == "%" and isinstance(left, str):
            raise TemplateProblem(TEMPLATE_UNSAFE, "%-formatting of text is not allowed")
        self._price(operator, left, right)
        return self.charge(_OPERATORS[operator](left, right), "a computed value")

    def _price(self, operator: str, left: Any, right: Any) -> None:
        """Refuse an arithmetic operation whose result would break a limit, before it runs."""
        max_bits = self.limits.max_int_bits
        if _is_int(left) and _is_int(right):
            # The fewest bits the result can have: refuse only what certainly breaks the limit;
            # the rest costs at most `right` bits more than the limit and is checked after.
            if operator == "**" and right > 0 and (left.bit_length() - 1) * right >= max_bits:
                raise _number_too_large(max_bits)
            if operator == "*" and left.bit_length() + right.bit_length() - 1 > max_bits:
                raise _number_too_large(max_bits)
            return
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if _is_int(count) and isinstance(seq, str | list | tuple):
                    self.ensure_fits(self.weight(seq) * count, "a repeated value")
        elif operator == "+" and isinstance(left, str | list | tuple):
            self.ensure_fits(self.weight(left) + self.weight(right), "a joined value")


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "**": operator.pow,
    "%": operator.mod,
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


def _number_too_large(max_bits: int) -> TemplateProblem:
    return TemplateProblem(
        TEMPLATE_NUMBER_TOO_LARGE, f"a number would be larger than {max_bits} bits"
    )


_current: ContextVar[Budget | None] = ContextVar("credbatch_template_budget", default=None)


def current() -> Budget:
    """The budget of the render in progress; outside a render (Jinja folding constants at
    compile time) a fresh default one, so the same prices apply there too."""
    return _current.get() or Budget(Limits())


@contextmanager
def spending(budget: Budget) -> Iterator[Budget]:
    """Make budget the one every sandboxed operation charges, for the duration."""
    token = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(token)
