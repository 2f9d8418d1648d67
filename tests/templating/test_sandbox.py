from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credbatch.templating.sandbox import CompiledTemplate, Limits, TemplateProblem
from tests.fixtures.templates import REFUSED_WITHIN

ATTACKS = {
    "{{ ''.__class__.__mro__ }}": "TEMPLATE_UNSAFE",
    "{{ ''['__class__'] }}": "TEMPLATE_UNSAFE",
    "{{ self }}": "TEMPLATE_UNSAFE",
    "{{ self.__init__.__globals__ }}": "TEMPLATE_UNSAFE",
    "{% include 'x' %}": "TEMPLATE_UNSAFE",
    "{% extends 'x' %}": "TEMPLATE_UNSAFE",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}": "TEMPLATE_UNSAFE",
    "{{ name.format(1) }}": "TEMPLATE_UNSAFE",
    "{{ '{:>999999999}'.format(1) }}": "TEMPLATE_UNSAFE",
    "{{ name.ljust(999999999) }}": "TEMPLATE_UNSAFE",
    "{{ '%999999999s' % 1 }}": "TEMPLATE_UNSAFE",
    "{{ 'x' * 999999999 }}": "TEMPLATE_OUTPUT_TOO_LARGE",
    "{{ [1] * 999999999 }}": "TEMPLATE_OUTPUT_TOO_LARGE",
    "{{ 2 ** 99999999 }}": "TEMPLATE_UNSAFE",
    "{{ range(10**8) }}": "TEMPLATE_UNSAFE",
    "{{ name|center(999999999) }}": "TEMPLATE_SYNTAX_ERROR",
    "{% set ns = namespace(s='x') %}": "TEMPLATE_UNDEFINED_PLACEHOLDER",
    "{{ lipsum(100000) }}": "TEMPLATE_UNDEFINED_PLACEHOLDER",
    "{{ cycler }}": "TEMPLATE_UNDEFINED_PLACEHOLDER",
    # Busy loops without output: stopped by the time budget.
    "{% for a in range(1000) %}{% for b in range(1000) %}{% for c in range(1000) %}"
    "{% endfor %}{% endfor %}{% endfor %}": "TEMPLATE_TIMEOUT",
    # The list is built once: built anew in every loop, its elements count against the output
    # budget too, which a fast machine then exhausts before the time budget.
    "{% set l = [0]*1000 %}{% for a in l %}{% for b in l %}{% for c in l %}"
    "{% endfor %}{% endfor %}{% endfor %}": "TEMPLATE_TIMEOUT",
    # Huge output: stopped by the output budget.
    "{% for a in range(1000) %}{% for b in range(1000) %}xxxxxxxxxx{% endfor %}{% endfor %}": (
        "TEMPLATE_OUTPUT_TOO_LARGE"
    ),
    "{{ range(1000)|join('y' * 100000) }}": "TEMPLATE_OUTPUT_TOO_LARGE",
    "{% for a in range(5) %}{% for b in range(5) %}{% for c in range(5) %}{% for d in range(5) %}"
    "{% endfor %}{% endfor %}{% endfor %}{% endfor %}": "TEMPLATE_UNSAFE",
    "{{ missing }}": "TEMPLATE_UNDEFINED_PLACEHOLDER",
    "{{ name": "TEMPLATE_SYNTAX_ERROR",
    "{{ 1 / 0 }}": "TEMPLATE_RENDER_ERROR",
}


@pytest.mark.parametrize(("source", "code"), ATTACKS.items())
def test_attacks_fail_safely_and_quickly(source: str, code: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateProblem) as caught:
        CompiledTemplate(source, html=True).render({"name": "Ann"})
    assert caught.value.code == code, caught.value.message
    assert caught.value.message
    assert time.monotonic() - started < REFUSED_WITHIN


def test_html_is_autoescaped_and_text_is_not() -> None:
    values = {"name": "<script>x</script>"}
    assert CompiledTemplate("<p>{{ name }}</p>", html=True).render(values) == (
        "<p>&lt;script&gt;x&lt;/script&gt;</p>"
    )
    assert CompiledTemplate("{{ name }}").render(values) == "<script>x</script>"


def test_ordinary_templates_render_and_report_placeholders() -> None:
    template = CompiledTemplate(
        "Hi {{ name|title }}{% if city %} from {{ city.upper() }}{% endif %}! "
        "{% for i in range(3) %}{{ loop.index }}{% endfor %} {{ name[0] }}"
    )
    assert template.placeholders == {"name", "city"}
    assert template.render({"name": "ann lee", "city": "oslo"}) == "Hi Ann Lee from OSLO! 123 a"


def test_source_size_is_bounded() -> None:
    with pytest.raises(TemplateProblem) as caught:
        CompiledTemplate("x" * 101, limits=Limits(max_source_chars=100))
    assert caught.value.code == "TEMPLATE_TOO_LARGE"


def test_a_compiled_template_renders_many_times() -> None:
    template = CompiledTemplate("{{ n }}")
    assert [template.render({"n": str(i)}) for i in range(3)] == ["0", "1", "2"]


_JINJA_BITS = ["{{", "}}", "{%", "%}", "for", "in", "range(", ")", "name", ".", "_", "'", "*", "|"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_JINJA_BITS), st.text(max_size=5)), max_size=20))
def test_arbitrary_sources_fail_only_with_template_problems(parts: list[str]) -> None:
    source = " ".join(parts)
    try:
        CompiledTemplate(source).render({"name": "Ann"})
    except TemplateProblem as problem:
        assert problem.code and problem.message
