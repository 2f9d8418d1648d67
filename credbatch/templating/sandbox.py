"""Jinja2 templates that tenants write, compiled once and rendered safely.

A template source comes from a tenant and its values from a CSV, so neither is trusted:
- the immutable sandbox, StrictUndefined, and HTML autoescaping for HTML bodies;
- a parse-time check (credbatch.templating.tree) refuses what a template never needs and an
  attack always does (includes, imports, macros, `self`, underscore attributes, deep loop
  nesting, hidden buffers, constant bombs);
- only a small allow-list of filters, globals and string methods exists at all, so there is
  no `center(10**9)` or `namespace()` to build huge strings with;
- every arithmetic operator, every filter, every `~`, every string method and every
  `{{ }}` output is priced and charged against the render's budget (credbatch.templating
  .budget): integers stay small and no value or sum of values outgrows the output limit, the
  same in every caller (creation, preview, upload check, worker);
- every loop iterates through a wrapper and every call goes through the environment, both
  counting against a time budget, and the output is produced with generate() and counted,
  so neither a busy loop nor a huge output can hold a worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2 import (
    StrictUndefined,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    pass_context,
    pass_eval_context,
)
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, LoopContext, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment

from credbatch.templating.budget import Budget, Limits, current, spending
from credbatch.templating.problems import (
    TEMPLATE_NUMBER_TOO_LARGE,
    TEMPLATE_OUTPUT_TOO_LARGE,
    TEMPLATE_RENDER_ERROR,
    TEMPLATE_SYNTAX_ERROR,
    TEMPLATE_TIMEOUT,
    TEMPLATE_TOO_LARGE,
    TEMPLATE_UNDEFINED,
    TEMPLATE_UNSAFE,
    TemplateProblem,
)
from credbatch.templating.tree import CONCAT_NAME, ITER_NAME, check_tree, instrument

__all__ = [
    "TEMPLATE_NUMBER_TOO_LARGE",
    "TEMPLATE_OUTPUT_TOO_LARGE",
    "TEMPLATE_RENDER_ERROR",
    "TEMPLATE_SYNTAX_ERROR",
    "TEMPLATE_TIMEOUT",
    "TEMPLATE_TOO_LARGE",
    "TEMPLATE_UNDEFINED",
    "TEMPLATE_UNSAFE",
    "CompiledTemplate",
    "Limits",
    "TemplateProblem",
]

MAX_RANGE = 1000
_SAFE_STR_METHODS = frozenset(
    {
        "upper",
        "lower",
        "title",
        "capitalize",
        "strip",
        "lstrip",
        "rstrip",
        "startswith",
        "endswith",
        "isdigit",
        "isalpha",
    }
)
_SAFE_FILTERS = (
    "abs",
    "capitalize",
    "count",
    "d",
    "default",
    "e",
    "escape",
    "first",
    "float",
    "int",
    "last",
    "length",
    "lower",
    "reverse",
    "round",
    "string",
    "striptags",
    "title",
    "trim",
    "truncate",
    "upper",
    "urlencode",
    "wordcount",
)


def _bounded_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = current()
    for item in iterable:
        budget.tick()
        yield item


def _bounded_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise TemplateProblem(TEMPLATE_UNSAFE, f"range() is limited to {MAX_RANGE} items")
    return result


@pass_eval_context
def _concat(eval_ctx: EvalContext, *parts: Any) -> str:
    """`a ~ b`, priced first: Jinja would join the text forms of any containers unasked."""
    budget = current()
    budget.tick()
    budget.ensure_fits(sum(budget.weight(part) for part in parts), "a joined text")
    # Charged as a call's result, by the environment.
    joined: str = markup_join(parts) if eval_ctx.autoescape else str_join(parts)
    return joined


def _bounded_join(value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    budget = current()
    separator = budget.weight(d)
    total = 0
    for item in _bounded_iter(value):
        total += budget.weight(item) + separator
        budget.ensure_fits(total, "a joined text")
    return d.join(str(item) for item in value)


def _guarded(filter_function: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, priced on its input and charged for its result.

    Taking the context also stops Jinja from running the filter on constants while it
    compiles, outside any budget.
    """

    @pass_context
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.tick()
        # Most filters start from the text form of their input.
        budget.ensure_fits(budget.weight(value), "the filtered value")
        return budget.charge(context.call(filter_function, value, *args, **kwargs))

    return guarded


def _finalize(value: Any) -> Any:
    # Every `{{ }}` output, before Python turns it into text.
    # Every `{{ }}` output, before Python turns it into text; charged even when the chunk
    # is not yielded at once (a loop's output inside a string being built).
    budget = current()
    weight = budget.weight(value)
    budget.ensure_fits(weight, "an output")
    budget.spend(weight)
    if isinstance(value, int) and not isinstance(value, bool):
        budget.check_int(value)
    return value


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+", "-", "/", "//"})

    def __init__(self, *, html: bool) -> None:
        super().__init__(
            undefined=StrictUndefined, autoescape=html, auto_reload=False, finalize=_finalize
        )
        allowed = {name: _guarded(self.filters[name]) for name in _SAFE_FILTERS}
        allowed["join"] = _guarded(_bounded_join)
        self.filters.clear()
        self.filters.update(allowed)
        self.globals.clear()
        self.globals["range"] = _bounded_range
        self.globals[ITER_NAME] = _bounded_iter
        self.globals[CONCAT_NAME] = _concat

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr.startswith("_"):
            return False
        if isinstance(obj, str):
            return attr in _SAFE_STR_METHODS
        return isinstance(obj, LoopContext)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Jinja hands out a wrapped str.format before asking is_safe_attribute; a padded
        # format spec ("{:>999999999}") would allocate gigabytes, so text methods are
        # allow-listed here first.
        if isinstance(obj, str) and attribute not in _SAFE_STR_METHODS:
            return self.unsafe_undefined(obj, attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, str) and isinstance(argument, str):
            return self.getattr(obj, argument)
        return super().getitem(obj, argument)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        # Positional-only, as in Jinja, so a template's keyword arguments cannot clash.
        budget = current()
        budget.tick()
        return budget.charge(super().call(context, obj, *args, **kwargs))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = current()
        budget.tick()
        return budget.arithmetic(operator, left, right)


_ENVIRONMENTS = {True: _Environment(html=True), False: _Environment(html=False)}


class CompiledTemplate:
    """One checked, compiled template; render it any number of times."""

    def __init__(self, source: str, *, html: bool = False, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.html = html
        if len(source) > self.limits.max_source_chars:
            raise TemplateProblem(
                TEMPLATE_TOO_LARGE,
                f"the template is longer than {self.limits.max_source_chars} characters",
            )
        environment = _ENVIRONMENTS[html]
        try:
            tree = environment.parse(source)
            check_tree(tree, self.limits)
            self.placeholders: frozenset[str] = frozenset(meta.find_undeclared_variables(tree))
            instrument(tree)
            tree.set_environment(environment)
            self._template = environment.from_string(tree)
        except TemplateSyntaxError as error:
            raise TemplateProblem(
                TEMPLATE_SYNTAX_ERROR, f"line {error.lineno}: {error.message}"
            ) from None
        except TemplateError as error:
            raise TemplateProblem(TEMPLATE_UNSAFE, error.message or "invalid template") from None
        self.source = source

    def render(self, values: Mapping[str, Any]) -> str:
        """Render with these values; raises TemplateProblem, never anything else."""
        budget = Budget(self.limits)
        with spending(budget):
            try:
                parts: list[str] = []
                total = 0
                for chunk in self._template.generate(values):
                    total += len(chunk)
                    if total > budget.max_chars:
                        raise TemplateProblem(
                            TEMPLATE_OUTPUT_TOO_LARGE,
                            f"the rendered text is longer than {budget.max_chars} characters",
                        )
                    parts.append(chunk)
                    budget.tick()
                return "".join(parts)
            except TemplateProblem:
                raise
            except UndefinedError as error:
                raise TemplateProblem(TEMPLATE_UNDEFINED, _undefined_message(error)) from None
            except SecurityError as error:
                # Jinja's message names the attribute and the type, never a value.
                raise TemplateProblem(TEMPLATE_UNSAFE, f"not allowed: {error}") from None
            except RecursionError:
                raise TemplateProblem(TEMPLATE_UNSAFE, "the template recurses too deeply") from None
            except MemoryError:
                raise TemplateProblem(
                    TEMPLATE_OUTPUT_TOO_LARGE, "the template is too large"
                ) from None
            except Exception as error:  # any other runtime failure of tenant-written code
                raise TemplateProblem(
                    TEMPLATE_RENDER_ERROR, f"the template failed to render ({type(error).__name__})"
                ) from None


def _undefined_message(error: UndefinedError) -> str:
    # Jinja's message names the missing variable or attribute, never a value.
    return f"undefined placeholder or attribute: {error.message}"
