"""Jinja2 templates that tenants write, compiled once and rendered safely.

A template source comes from a tenant and its values from a CSV, so neither is trusted:
- the immutable sandbox, StrictUndefined, and HTML autoescaping for HTML bodies;
- a parse-time check refuses what a template never needs and an attack always does
  (includes, imports, macros, `self`, underscore attributes, deep loop nesting);
- only a small allow-list of filters, globals and string methods exists at all, so there is
  no `center(10**9)` or `namespace()` to build huge strings with;
- `*`, `**`, `%` and `+` are intercepted and bounded;
- every loop iterates through a wrapper and every call goes through the environment, both
  counting against a time budget, and the output is produced with generate() and counted,
  so neither a busy loop nor a huge output can hold a worker.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATE_SYNTAX_ERROR = "TEMPLATE_SYNTAX_ERROR"
TEMPLATE_UNSAFE = "TEMPLATE_UNSAFE"
TEMPLATE_TOO_LARGE = "TEMPLATE_TOO_LARGE"
TEMPLATE_OUTPUT_TOO_LARGE = "TEMPLATE_OUTPUT_TOO_LARGE"
TEMPLATE_TIMEOUT = "TEMPLATE_TIMEOUT"
TEMPLATE_UNDEFINED = "TEMPLATE_UNDEFINED_PLACEHOLDER"
TEMPLATE_RENDER_ERROR = "TEMPLATE_RENDER_ERROR"

MAX_LOOP_NESTING = 3
MAX_RANGE = 1000
_ITER_NAME = "_cb_iter"
_FORBIDDEN_NAMES = frozenset({"self", "varargs", "kwargs", "caller", _ITER_NAME})
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


class TemplateProblem(Exception):
    """A template that cannot be compiled or rendered; code is stable, message is for humans.

    Messages name the problem and the line, never a placeholder's value.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of one template: source size, output size and render time."""

    max_source_chars: int = 100_000
    max_output_chars: int = 500_000
    max_seconds: float = 0.25


class _Budget:
    __slots__ = ("deadline", "max_chars", "ticks")

    def __init__(self, limits: Limits) -> None:
        self.deadline = time.monotonic() + limits.max_seconds
        self.max_chars = limits.max_output_chars
        self.ticks = 0

    def tick(self) -> None:
        self.ticks += 1
        # Reading the clock every time would double the cost of a tight loop.
        if not self.ticks & 0xFF and time.monotonic() > self.deadline:
            raise TemplateProblem(TEMPLATE_TIMEOUT, "the template takes too long to render")


_budget: ContextVar[_Budget | None] = ContextVar("credbatch_template_budget", default=None)


def _tick() -> None:
    budget = _budget.get()
    if budget is not None:
        budget.tick()


def _bounded_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _tick()
        yield item


def _bounded_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise TemplateProblem(TEMPLATE_UNSAFE, f"range() is limited to {MAX_RANGE} items")
    return result


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | list | tuple) else None


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+", "//"})

    def __init__(self, *, html: bool) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=html, auto_reload=False)
        allowed = {name: self.filters[name] for name in _SAFE_FILTERS}
        self.filters.clear()
        self.filters.update(allowed)
        self.filters["join"] = _bounded_join
        self.globals.clear()
        self.globals["range"] = _bounded_range
        self.globals[_ITER_NAME] = _bounded_iter

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
        _tick()
        return super().call(context, obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        limit = _budget_limit()
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                size = _size(seq)
                if size is not None and isinstance(count, int) and size * count > limit:
                    raise TemplateProblem(TEMPLATE_OUTPUT_TOO_LARGE, "a repeated text is too long")
        elif operator == "**":
            if isinstance(right, int | float) and abs(right) > 64:
                raise TemplateProblem(TEMPLATE_UNSAFE, "exponents are limited to 64")
        elif operator == "%":
            if isinstance(left, str):
                raise TemplateProblem(TEMPLATE_UNSAFE, "%-formatting of text is not allowed")
        elif operator == "+":
            sizes = (_size(left), _size(right))
            if sizes[0] is not None and sizes[1] is not None and sizes[0] + sizes[1] > limit:
                raise TemplateProblem(TEMPLATE_OUTPUT_TOO_LARGE, "a joined text is too long")
        return super().call_binop(context, operator, left, right)


def _budget_limit() -> int:
    budget = _budget.get()
    return budget.max_chars if budget is not None else Limits().max_output_chars


def _bounded_join(value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    items = [str(item) for item in _bounded_iter(value)]
    if sum(map(len, items)) + len(d) * max(len(items) - 1, 0) > _budget_limit():
        raise TemplateProblem(TEMPLATE_OUTPUT_TOO_LARGE, "a joined text is too long")
    return d.join(items)


_ENVIRONMENTS = {True: _Environment(html=True), False: _Environment(html=False)}


def _check_tree(tree: nodes.Template) -> None:
    """Refuse constructs a credential template never needs; see the module docstring."""
    for node in tree.find_all(
        (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport, nodes.Block)
    ):
        raise TemplateProblem(
            TEMPLATE_UNSAFE,
            f"line {node.lineno}: templates cannot extend, include or import other templates",
        )
    for node in tree.find_all((nodes.Macro, nodes.CallBlock)):
        raise TemplateProblem(TEMPLATE_UNSAFE, f"line {node.lineno}: macros are not supported")
    for name in tree.find_all(nodes.Name):
        if name.name in _FORBIDDEN_NAMES or name.name.startswith("_"):
            raise TemplateProblem(
                TEMPLATE_UNSAFE, f"line {name.lineno}: `{name.name}` is not a placeholder"
            )
    for ref in tree.find_all(nodes.NSRef):
        raise TemplateProblem(TEMPLATE_UNSAFE, f"line {ref.lineno}: namespaces are not supported")
    for getattr_node in tree.find_all(nodes.Getattr):
        if getattr_node.attr.startswith("_"):
            raise TemplateProblem(
                TEMPLATE_UNSAFE,
                f"line {getattr_node.lineno}: access to `{getattr_node.attr}` is not allowed",
            )
    for getitem in tree.find_all(nodes.Getitem):
        arg = getitem.arg
        if isinstance(arg, nodes.Const) and isinstance(arg.value, str) and arg.value[:1] == "_":
            raise TemplateProblem(
                TEMPLATE_UNSAFE, f"line {getitem.lineno}: access to `{arg.value}` is not allowed"
            )
    _check_nesting(tree, 0)


def _check_nesting(node: nodes.Node, depth: int) -> None:
    for child in node.iter_child_nodes():
        inner = depth + 1 if isinstance(child, nodes.For) else depth
        if inner > MAX_LOOP_NESTING:
            raise TemplateProblem(
                TEMPLATE_UNSAFE,
                f"line {child.lineno}: loops nest at most {MAX_LOOP_NESTING} deep",
            )
        _check_nesting(child, inner)


def _bound_loops(tree: nodes.Template) -> None:
    for loop in tree.find_all(nodes.For):
        wrapped = nodes.Call(nodes.Name(_ITER_NAME, "load"), [loop.iter], [], None, None)
        wrapped.set_lineno(loop.lineno)
        loop.iter = wrapped


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
            _check_tree(tree)
            self.placeholders: frozenset[str] = frozenset(meta.find_undeclared_variables(tree))
            _bound_loops(tree)
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
        budget = _Budget(self.limits)
        token = _budget.set(budget)
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
            raise TemplateProblem(TEMPLATE_OUTPUT_TOO_LARGE, "the template is too large") from None
        except Exception as error:  # any other runtime failure of tenant-written code
            raise TemplateProblem(
                TEMPLATE_RENDER_ERROR, f"the template failed to render ({type(error).__name__})"
            ) from None
        finally:
            _budget.reset(token)


def _undefined_message(error: UndefinedError) -> str:
    # Jinja's message names the missing variable or attribute, never a value.
    return f"undefined placeholder or attribute: {error.message}"
