"""Bombs that a trial render does not reach or the old size limits did not count.

Each is refused quickly, with the code of the limit it breaks, wherever it hides.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from credbatch.templating.budget import Budget, Limits
from credbatch.templating.sandbox import CompiledTemplate, TemplateProblem
from tests.fixtures.templates import REFUSED_WITHIN

LONG_NAME = {"name": "A name longer than twenty characters"}
NUMBER = "TEMPLATE_NUMBER_TOO_LARGE"
OUTPUT = "TEMPLATE_OUTPUT_TOO_LARGE"
UNSAFE = "TEMPLATE_UNSAFE"

# Refused when compiled: arithmetic on constants is priced before any render.
AT_COMPILE = {
    "conditional pow bomb": (
        "{% if name | length > 20 %}{{ ((((9 ** 64) ** 64) ** 64) ** 16) % 7 }}{% endif %}",
        NUMBER,
    ),
    "int product": ("{{ 10 ** 60 * 10 ** 60 * 10 ** 60 * 10 ** 60 * 10 ** 60 }}", NUMBER),
    "text repeat": ("{% if false %}{{ 'x' * 999999999 }}{% endif %}", OUTPUT),
    "recursive loop": ("{% for x in [1] recursive %}{{ loop([1, 1]) }}{% endfor %}", UNSAFE),
    "set block": ("{% set s %}x{% endset %}", UNSAFE),
    "filter block": ("{% filter upper %}x{% endfilter %}", UNSAFE),
}

# Refused when rendered with a long name (and rendered fine with a short one).
AT_RENDER = {
    "pow of a value": (
        "{% if name | length > 20 %}{{ ((((name | length + 9) ** 64) ** 64) ** 64) % 7 }}"
        "{% endif %}",
        NUMBER,
    ),
    "int times int": (
        "{% if name | length > 20 %}{% set n = (name | length) ** 60 %}"
        "{{ n * n * n * n * n }}{% endif %}",
        NUMBER,
    ),
    "int from a filter": (
        "{% if name | length > 20 %}{{ ('9' * 100) | int }}{% endif %}",
        NUMBER,
    ),
    "nested ~ doubling": (
        "{% if name | length > 20 %}{% set a = name ~ name %}"
        + "{% set a = a ~ a %}" * 40
        + "{{ a | length }}{% endif %}",
        OUTPUT,
    ),
    "~ doubling in a loop": (
        "{% if name | length > 20 %}{% set s = range(1000) | join('xxxxxxxxxx') %}"
        "{% for i in range(1000) %}{% set t = s ~ s ~ s %}{% endfor %}{% endif %}",
        OUTPUT,
    ),
    "string of a big list": (
        "{% if name | length > 20 %}{% set a = [name] * 1000 %}{% set b = [a] * 1000 %}"
        "{{ b | string | length }}{% endif %}",
        OUTPUT,
    ),
    "string of shared literal lists": (
        "{% if name | length > 20 %}{% set a = [name, name, name, name, name, name] %}"
        "{% set b = [a, a, a, a, a, a] %}{% set c = [b, b, b, b, b, b] %}"
        "{% set d = [c, c, c, c, c, c] %}{% set e = [d, d, d, d, d, d] %}"
        "{% set f = [e, e, e, e, e, e] %}{{ f | string | length }}{% endif %}",
        OUTPUT,
    ),
    "output of a big list": (
        "{% if name | length > 20 %}{% set a = [name, name, name, name, name, name] %}"
        "{% set b = [a, a, a, a, a, a] %}{% set c = [b, b, b, b, b, b] %}"
        "{% set d = [c, c, c, c, c, c] %}{% set e = [d, d, d, d, d, d] %}"
        "{% set f = [e, e, e, e, e, e] %}{{ f }}{% endif %}",
        OUTPUT,
    ),
    "upper of a big list": (
        "{% if name | length > 20 %}{% set a = [name] * 1000 %}{% set b = [a, a, a, a, a] %}"
        "{% set c = [b, b, b, b, b] %}{{ c | upper }}{% endif %}",
        OUTPUT,
    ),
    "text times int": ("{% if name | length > 20 %}{{ name * 100000 }}{% endif %}", OUTPUT),
    "list times int": ("{% if name | length > 20 %}{{ [name] * 100000 }}{% endif %}", OUTPUT),
    "list plus list": (
        "{% if name | length > 20 %}{% set a = [name] * 10000 %}{{ a + a + a + a }}{% endif %}",
        OUTPUT,
    ),
    "join of joins": (
        "{% if name | length > 20 %}{{ range(1000) | join(range(1000) | join(name)) }}{% endif %}",
        OUTPUT,
    ),
    "join of big items": (
        "{% if name | length > 20 %}{% set a = [name] * 1000 %}"
        "{{ [a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a] | join }}{% endif %}",
        OUTPUT,
    ),
    "range of ranges": (
        "{% if name | length > 20 %}{{ [range(1000), range(1000)] * 100 }}{% endif %}",
        OUTPUT,
    ),
    "range joined repeatedly": (
        "{% if name | length > 20 %}{% set r = range(1000) | join(name) %}"
        "{% for i in range(1000) %}{{ r }}{% endfor %}{% endif %}",
        OUTPUT,
    ),
    "string method on a big text": (
        "{% if name | length > 20 %}{% set s = range(1000) | join('x' * 100) %}"
        "{% for i in range(100) %}{% set t = s.upper() %}{% endfor %}{% endif %}",
        OUTPUT,
    ),
}


def _refused(source: str, values: dict[str, str]) -> tuple[TemplateProblem, float]:
    started = time.monotonic()
    with pytest.raises(TemplateProblem) as caught:
        CompiledTemplate(source, html=True).render(values)
    return caught.value, time.monotonic() - started


@pytest.mark.parametrize(("source", "code"), AT_COMPILE.values(), ids=AT_COMPILE.keys())
def test_constant_bombs_are_refused_when_compiled(source: str, code: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateProblem) as caught:
        CompiledTemplate(source, html=True)
    assert caught.value.code == code, caught.value.message
    assert caught.value.message.startswith("line 1: ")
    assert time.monotonic() - started < REFUSED_WITHIN


@pytest.mark.parametrize(("source", "code"), AT_RENDER.values(), ids=AT_RENDER.keys())
def test_hidden_bombs_pass_a_trial_render_and_fail_fast_on_a_real_row(
    source: str, code: str
) -> None:
    template = CompiledTemplate(source, html=True)
    assert template.render({"name": "name"}) == ""
    problem, seconds = _refused(source, LONG_NAME)
    assert problem.code == code, problem.message
    assert seconds < REFUSED_WITHIN


@pytest.mark.parametrize("html", [True, False])
def test_ordinary_arithmetic_and_text_still_work(html: bool) -> None:
    template = CompiledTemplate(
        "{{ name ~ '!' }} {{ (name | length) ** 3 }} {{ (2 ** 60 * 2 ** 60) % 1000 }} "
        "{{ -(3 * 4) }} "
        "{{ [1, 2] + [3] }} {{ 'ab' * 3 }} {{ 7 // 2 }} {{ 7 / 2 }} {{ 10 - 3 }} "
        "{{ [name, 'b'] | join(', ') }} {{ name.upper() }}",
        html=html,
    )
    assert template.render({"name": "Ann"}) == (
        "Ann! 27 576 -12 [1, 2, 3] ababab 3 3.5 7 Ann, b ANN"
    )


def test_the_limits_are_the_templates_own() -> None:
    small = Limits(max_output_chars=100, max_int_bits=16)
    with pytest.raises(TemplateProblem) as caught:
        CompiledTemplate("{{ name * 30 }}", limits=small).render({"name": "abcd"})
    assert caught.value.code == OUTPUT
    with pytest.raises(TemplateProblem) as caught:
        CompiledTemplate("{{ (name | length) ** 9 }}", limits=small).render({"name": "abcd"})
    assert caught.value.code == NUMBER
    assert CompiledTemplate("{{ (name | length) ** 7 }}", limits=small).render(
        {"name": "abcd"}
    ) == str(4**7)


class CountingBudget(Budget):
    """A Budget that counts the values it weighs, nested ones included."""

    __slots__ = ("weighed",)

    def __init__(self, limits: Limits) -> None:
        super().__init__(limits)
        self.weighed = 0

    def weight(self, value: Any) -> int:
        self.weighed += 1
        return super().weight(value)


def test_weight_counts_shared_parts_once_per_part() -> None:
    budget = CountingBudget(Limits())
    leaf = ["abc"] * 10
    nested: object = leaf
    for _ in range(30):  # 10 ** 30 leaves if walked naively
        nested = [nested] * 10
    assert budget.weight(nested) > 10**30
    # The outer list, then the ten items of each of the 31 distinct lists, each list walked
    # once however many times it is shared.
    assert budget.weighed == 1 + 31 * 10
