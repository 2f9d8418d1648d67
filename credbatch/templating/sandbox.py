"""Jinja2 templates that tenants write, compiled once and rendered safely.

A template source comes from a tenant and its values from a CSV, so neither is trusted:
- the immutable sandbox, StrictUndefined, and HTML autoescaping for HTML bodies;
- a parse-time check (credbatch.templating.tree) refuses what a template never needs and an
  attack always does (includes, imports, macros, `self`, underscore attributes, deep loop
  nesting, hidden buffers, constant bombs);
- only a small allow-list of filters, tests, globals and methods exists at all, so there is
  no `center(10**9)`, `format` or `namespace()` to build huge strings with, and each of them
  has a price (credbatch.templating.pricing) that looks at its arguments as well as its input
  before it runs (`round(-10**7)` is refused, not computed);
- every arithmetic operator, every filter, test and call, every comparison, every `~` and
  every `{{ }}` output is priced and charged against the render's budget
  (credbatch.templating.budget): integers stay small and no value or sum of values outgrows
  the output limit, the same in every caller (creation, preview, upload check, worker);
- every loop iterates through a wrapper and every call goes through the environment, both
  counting against a time budget, and the output is produced with generate() and counted,
  so neither a busy loop nor a huge output can hold a worker.

What the sandbox cannot see (a C-level call it priced wrongly) is stopped one level out: every
service renders in a separate process that is killed after its time and memory
(credbatch.templating.runner).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, cast

from jinja2 import (
    StrictUndefined,
    TemplateSyntaxError,
    Undefined,
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
from credbatch.templating.pricing import (
    COMPARISONS,
    FILTER_PRICES,
    GLOBAL_PRICES,
    LOOP_METHOD_PRICES,
    METHOD_PRICES,
    TEST_PRICES,
    Price,
)
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
from credbatch.templating.tree import (
    COMPARE_NAME,
    CONCAT_NAME,
    ITER_NAME,
    check_tree,
    instrument,
)

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

_SAFE_STR_METHODS = frozenset(METHOD_PRICES)


def _bounded_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = current()
    for item in iterable:
        budget.tick()
        yield item


@pass_eval_context
def _concat(eval_ctx: EvalContext, *parts: Any) -> str:
    """`a ~ b`, priced first: Jinja would join the text forms of any containers unasked."""
    budget = current()
    budget.tick()
    budget.ensure_fits(sum(budget.weight(part) for part in parts), "a joined text")
    # Charged as a call's result, by the environment.
    joined: str = markup_join(parts) if eval_ctx.autoescape else str_join(parts)
    return joined


def _compare(left: Any, *operations: Any) -> Any:
    """`a == b`, `a in b`, `a < b < c`: the operands' sizes are the work, and neither may
    outgrow the output limit (a literal list holding one long text a thousand times)."""
    budget = current()
    budget.tick()
    result: Any = True
    for index in range(0, len(operations), 2):
        operator, right = operations[index], operations[index + 1]
        budget.work(budget.compared(left, right))
        result = COMPARISONS[operator](left, right)
        if not result:
            return result
        left = right
    return result


def _bounded_join(value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    budget = current()
    separator = budget.weight(d)
    items = list(_bounded_iter(value))  # once: a generator could not be read twice
    total = 0
    for item in items:
        total += budget.weight(item) + separator
        budget.ensure_fits(total, "a joined text")
    budget.work(total)
    return d.join(str(item) for item in items)


def _priced(function: Callable[..., Any], price: Price, what: str) -> Callable[..., Any]:
    """The filter or test, priced on its input and arguments and charged for its result.

    Taking the context also stops Jinja from running it on constants while it compiles,
    outside any budget.
    """

    @pass_context
    def priced(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.tick()
        # Most filters start from the text form of their input.
        budget.ensure_fits(budget.weight(value), "the filtered value")
        build, work = price(budget, value, *args, **kwargs)
        budget.ensure_fits(build, f"the result of {what}")
        result = context.call(function, value, *args, **kwargs)
        budget.work(work)
        return budget.charge(result)

    return priced


def _method_price(obj: Any) -> tuple[Price, Any] | None:
    """The price of a text or loop method about to be called, and the object it belongs to."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", None)
    if not isinstance(name, str):
        return None
    if isinstance(owner, str) and name in METHOD_PRICES:
        return METHOD_PRICES[name], owner
    if isinstance(owner, LoopContext) and name in LOOP_METHOD_PRICES:
        return LOOP_METHOD_PRICES[name], owner
    return None


def _finalize(value: Any) -> Any:
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
        filters: dict[str, Callable[..., Any]] = {**self.filters, "join": _bounded_join}
        self.filters = {
            name: _priced(filters[name], price, f"`{name}`")
            for name, price in FILTER_PRICES.items()
        }
        tests = cast(dict[str, Callable[..., Any]], self.tests)
        self.tests = {
            name: _priced(tests[name], price, f"`is {name}`") for name, price in TEST_PRICES.items()
        }
        self.globals = {name: function for name, (function, _) in GLOBAL_PRICES.items()}
        self.globals[ITER_NAME] = _bounded_iter
        self.globals[CONCAT_NAME] = _concat
        self.globals[COMPARE_NAME] = _compare

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
        if any(obj is internal for internal in _INTERNAL):  # tree.py's: priced inside
            return budget.charge(super().call(context, obj, *args, **kwargs))
        # Jinja adds these for calls inside loops and blocks; Context.call drops them.
        arguments = {k: v for k, v in kwargs.items() if k not in _JINJA_KEYWORDS}
        method = _method_price(obj)
        function = _global_price(obj)
        if method is not None:
            cost = method[0](budget, method[1], *args, **arguments)
        elif function is not None:
            cost = function(budget, *args, **arguments)
        elif isinstance(obj, Undefined):
            return super().call(context, obj, *args, **kwargs)  # fails naming what is missing
        else:
            raise TemplateProblem(TEMPLATE_UNSAFE, f"`{_describe(obj)}` cannot be called")
        build, work = cost
        budget.ensure_fits(build, "a call's result")
        result = super().call(context, obj, *args, **kwargs)
        budget.work(work)
        return budget.charge(result)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = current()
        budget.tick()
        return budget.arithmetic(operator, left, right)


_INTERNAL = (_bounded_iter, _concat, _compare)
_JINJA_KEYWORDS = frozenset({"_loop_vars", "_block_vars"})


def _global_price(obj: Any) -> Price | None:
    for function, price in GLOBAL_PRICES.values():
        if obj is function:
            return price
    return None


def _describe(obj: Any) -> str:
    # A type or a name, never a value.
    return str(getattr(obj, "__name__", type(obj).__name__))


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
        except SyntaxError as error:
            # Python refuses code Jinja generated for an expression that cannot work
            # (`(not x)[1]`): a warning it raises as an error when warnings are errors.
            raise TemplateProblem(
                TEMPLATE_SYNTAX_ERROR, f"invalid expression: {error.msg}"
            ) from None
        except (RecursionError, MemoryError):
            # Jinja's parser and Python's compiler recurse once per nesting level.
            raise TemplateProblem(TEMPLATE_UNSAFE, "the template nests too deeply") from None
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
