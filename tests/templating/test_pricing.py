"""Every filter, test, method and global is priced on its arguments, not only its input.

Each hostile case below ran for seconds or built gigabytes before its price existed (measured
on the sandbox without it); each is now refused quickly with the code of the limit it breaks,
while the ordinary use of the same name still renders.
"""

from __future__ import annotations

import time

import pytest

from credbatch.templating.budget import Limits
from credbatch.templating.pricing import (
    FILTER_PRICES,
    GLOBAL_PRICES,
    LOOP_METHOD_PRICES,
    METHOD_PRICES,
    TEST_PRICES,
)
from credbatch.templating.sandbox import _ENVIRONMENTS, CompiledTemplate, TemplateProblem
from tests.fixtures.templates import REFUSED_WITHIN

NUMBER = "TEMPLATE_NUMBER_TOO_LARGE"
OUTPUT = "TEMPLATE_OUTPUT_TOO_LARGE"
SYNTAX = "TEMPLATE_SYNTAX_ERROR"
TIMEOUT = "TEMPLATE_TIMEOUT"
UNSAFE = "TEMPLATE_UNSAFE"

# 400,000 characters: the most `*` builds from a ten-character text within the output limit.
LONG = "('aaaaaaaaaa' * 40000)"
LONG_ASTRAL = "('😀aaaaaaaaa' * 40000)"
# A list holding one long text a hundred times: free to build (references), huge to compare.
SHARED = "{% set s = " + LONG + " %}{% set l = [" + ", ".join(["s"] * 100) + "] %}"

# The template: the precision comes from a CSV value.
ROUND_BOMB = "{{ 5 | round(0 - (level|int)) }}"
HOSTILE_ROW = {"level": "10000000", "name": "Ann"}

# name -> (template, code): refused with hostile values (HOSTILE_ROW).
REFUSED = {
    "round precision from a value": (ROUND_BOMB, UNSAFE),
    "round precision, positive": ("{{ 5 | round(level|int) }}", UNSAFE),
    "round with ceil": ("{{ 5.5 | round(level|int, 'ceil') }}", UNSAFE),
    "round method": ("{{ 5.5 | round(1, 'up') }}", UNSAFE),
    "round precision not whole": ("{{ 5.5 | round(1.5, 'floor') }}", UNSAFE),
    "round of text": ("{{ name | round }}", UNSAFE),
    "trim with a huge set": ("{{ " + LONG_ASTRAL + " | trim(" + LONG + " ~ 'a😀') }}", UNSAFE),
    "strip with a huge set": ("{{ " + LONG_ASTRAL + ".strip(" + LONG + " ~ 'a') }}", UNSAFE),
    "lstrip with a huge set": ("{{ name.lstrip('x' * 1000) }}", UNSAFE),
    "rstrip with a huge set": ("{{ name.rstrip('x' * 1000) }}", UNSAFE),
    "strip with a non-text set": ("{{ name.strip(5) }}", UNSAFE),
    "truncate negative length": ("{{ name | truncate(-5) }}", UNSAFE),
    "truncate shorter than its end": ("{{ name | truncate(1, end='...') }}", UNSAFE),
    "truncate negative leeway": ("{{ name | truncate(10, leeway=-1) }}", UNSAFE),
    "truncate end not text": ("{{ name | truncate(10, end=[1]) }}", UNSAFE),
    "truncate with a huge end": (
        "{{ " + LONG + " | truncate(450000, end=" + LONG + ") }}",
        OUTPUT,
    ),
    "upper of a third of the limit": ("{{ ('ßßßßßßßßßß' * 20000) | upper }}", OUTPUT),
    "title of a long text": ("{{ " + LONG + " | title }}", OUTPUT),
    "escape that would grow fivefold": ("{{ ('&&&&&&&&&&' * 20000) | e | length }}", OUTPUT),
    "urlencode of unicode": ("{{ ('éééééééééé' * 10000) | urlencode }}", OUTPUT),
    "join separator not text": ("{{ [1, 2] | join([3]) }}", UNSAFE),
    "join attribute": ("{{ [name] | join(',', attribute='upper') }}", UNSAFE),
    "odd of a format string": ("{{ '%999999999d' is odd }}", UNSAFE),
    "even of a format string": ("{{ '%999999999d' is even }}", UNSAFE),
    "divisibleby of a format string": ("{{ '%999999999d' is divisibleby(3) }}", UNSAFE),
    "divisibleby a format string": ("{{ 3 is divisibleby('%999999999d') }}", UNSAFE),
    "lower test of shared lists": (
        "{% set a = ['xxxxxxxxxx'] * 1000 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}"
        "{% set c = [b, b, b, b, b, b, b, b, b, b] %}{% set d = [c, c, c, c, c, c, c, c, c, c] %}"
        "{{ d is lower }}",
        OUTPUT,
    ),
    "in a list of shared texts": (SHARED + "{{ (s[:-1] ~ 'b') in l }}", OUTPUT),
    "== a list of shared texts": (SHARED + "{{ l == l[:] }}", OUTPUT),
    "in test of shared texts": (SHARED + "{{ (s ~ 'b') is in(l) }}", OUTPUT),
    "loop.changed of shared texts": (
        SHARED + "{% for i in range(3) %}{{ loop.changed(l) }}{% endfor %}",
        OUTPUT,
    ),
    "range step zero": ("{{ range(1, 5, 0) }}", UNSAFE),
    "range of text": ("{{ range('9') }}", UNSAFE),
    "range of a huge span": ("{{ range(0, 10 ** 70, 10 ** 60) }}", UNSAFE),
    "range of four numbers": ("{{ range(1, 2, 3, 4) }}", UNSAFE),
    "calling the loop": ("{% for i in [1] %}{{ loop([1]) }}{% endfor %}", UNSAFE),
    "int of a long binary text": ("{{ ('1111111111' * 1000) | int(0, 2) }}", NUMBER),
}

# name -> (template, values, expected output): the ordinary use of each priced name.
ORDINARY = {
    "round": ("{{ 1234.5678 | round(2) }} {{ 1234 | round(-2) }}", {}, "1234.57 1200"),
    "round ceil and floor": (
        "{{ 2.1 | round(0, 'ceil') }} {{ 2.9 | round(0, 'floor') }}",
        {},
        "3.0 2.0",
    ),
    "round precision from a value": (
        "{{ 15 | round(0 - (level|int)) }}",
        {"level": "1"},
        "20",
    ),
    "truncate": ("{{ 'hello wonderful world' | truncate(8, end='..') }}", {}, "hello.."),
    "truncate with leeway": ("{{ 'hello world' | truncate(9, leeway=2) }}", {}, "hello world"),
    "trim": ("{{ '..ann..' | trim('.') }}", {}, "ann"),
    "strip": ("{{ '  ann  '.strip() }}{{ 'xxannxx'.strip('x') }}", {}, "annann"),
    "join": ("{{ ['a', 'b'] | join(', ') }}", {}, "a, b"),
    "join of a generator": ("{{ [1, 2, 3] | reverse | join('-') }}", {}, "3-2-1"),
    "urlencode": ("{{ 'a b&c' | urlencode }}", {}, "a%20b%26c"),
    "case": ("{{ 'ann' | upper }}{{ 'ANN'.lower() }}{{ 'ann lee' | title }}", {}, "ANNannAnn Lee"),
    "escape": ("{{ '<a>' | e }}", {}, "&lt;a&gt;"),
    "int and float": ("{{ '42' | int + 1 }} {{ '2.5' | float * 2 }}", {}, "43 5.0"),
    "odd and divisibleby": ("{{ 3 is odd }} {{ 9 is divisibleby(3) }}", {}, "True True"),
    "comparisons": ("{{ 1 < 2 < 3 }} {{ 'a' in 'cat' }} {{ 2 == 3 }}", {}, "True True False"),
    "chained comparison stops at the first false": ("{{ 3 < 2 < 1 }}", {}, "False"),
    "tests": (
        "{{ name is lower }} {{ name is string }} {{ 1 is number }}",
        {"name": "ann"},
        "True True True",
    ),
    "range": ("{% for i in range(1, 10, 4) %}{{ i }}{% endfor %}", {}, "159"),
    "loop methods": (
        "{% for i in [1, 1, 2] %}{{ loop.cycle('a', 'b') }}{{ loop.changed(i) }}{% endfor %}",
        {},
        "aTruebFalseaTrue",
    ),
    "startswith": ("{{ 'ann'.startswith(('a', 'b')) }} {{ 'ann'.endswith('n') }}", {}, "True True"),
}


@pytest.mark.parametrize(("source", "code"), REFUSED.values(), ids=REFUSED.keys())
def test_hostile_arguments_are_refused_quickly(source: str, code: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateProblem) as caught:
        CompiledTemplate(source).render(HOSTILE_ROW)
    assert caught.value.code == code, caught.value.message
    assert time.monotonic() - started < REFUSED_WITHIN


@pytest.mark.parametrize(("source", "values", "expected"), ORDINARY.values(), ids=ORDINARY.keys())
def test_ordinary_arguments_still_render(
    source: str, values: dict[str, str], expected: str
) -> None:
    assert CompiledTemplate(source).render(values) == expected


def test_the_round_bomb_names_the_limit() -> None:
    with pytest.raises(TemplateProblem) as caught:
        CompiledTemplate(ROUND_BOMB).render(HOSTILE_ROW)
    assert caught.value.message == "`round`: the precision is between -78 and 78"


@pytest.mark.parametrize("html", [False, True])
def test_exactly_the_priced_names_are_callable(html: bool) -> None:
    environment = _ENVIRONMENTS[html]
    assert set(environment.filters) == set(FILTER_PRICES)
    assert set(environment.tests) == set(TEST_PRICES)
    assert set(GLOBAL_PRICES) <= set(environment.globals)
    assert {name for name in environment.globals if not name.startswith("_cb_")} == set(
        GLOBAL_PRICES
    )
    assert set(LOOP_METHOD_PRICES) == {"changed", "cycle"}
    assert "format" not in METHOD_PRICES


# Filters that make text grow from a number argument, or format it: none exists here.
@pytest.mark.parametrize(
    "source",
    [
        "{{ name | wordwrap(999999999) }}",
        "{{ name | indent(999999999) }}",
        "{{ name | center(999999999) }}",
        "{{ '%s' | format(name) }}",
        "{{ name | replace('a', name) }}",
        "{{ name | batch(999999999) }}",
        "{{ name | slice(999999999) }}",
        "{{ name | filesizeformat }}",
    ],
)
def test_filters_that_grow_text_from_an_argument_do_not_exist(source: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        CompiledTemplate(source)
    assert caught.value.code == SYNTAX


@pytest.mark.parametrize(
    "source",
    ["{{ name.center(999999999) }}", "{{ name.replace('a', name) }}", "{{ name.zfill(10**9) }}"],
)
def test_text_methods_beyond_the_allow_list_are_refused(source: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        CompiledTemplate(source).render({"name": "Ann"})
    assert caught.value.code in (UNSAFE, "TEMPLATE_UNDEFINED_PLACEHOLDER")


def test_a_loop_of_calls_that_each_read_a_long_text_is_stopped_on_time() -> None:
    # Each wordcount reads 400,000 characters and returns a small number: only the work
    # those calls report reads the clock before a few hundred of them have run.
    limits = Limits(max_seconds=0.05)
    source = (
        "{% set s = ('a a a a a ' * 40000) %}"
        "{% for i in range(1000) %}{% for j in range(1000) %}{{ s | wordcount }}"
        "{% endfor %}{% endfor %}"
    )
    started = time.monotonic()
    with pytest.raises(TemplateProblem) as caught:
        CompiledTemplate(source, limits=limits).render({})
    assert caught.value.code == TIMEOUT
    assert time.monotonic() - started < 10 * limits.max_seconds


def test_compiling_a_deeply_nested_template_is_a_template_problem() -> None:
    for source in (
        "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
        "{{ x" + "|upper" * 15000 + " }}",
        "{{ " + "[" * 3000 + "]" * 3000 + " }}",
    ):
        with pytest.raises(TemplateProblem) as caught:
            CompiledTemplate(source)
        assert caught.value.code == UNSAFE
