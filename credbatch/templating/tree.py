"""Checks and rewrites of a template's syntax tree, before Jinja compiles it.

The checks refuse what a credential template never needs and an attack always does:
includes, imports and macros (other code), `self` and underscore names (Python internals),
namespaces, deep loop nesting (a busy loop), recursive loops and `{% set %}` / `{% filter %}`
blocks (they render into a buffer joined before its length is counted), and arithmetic on
constants that breaks the budget (a bomb behind an `{% if %}` no trial render takes).

The rewrite sends every loop's iterable through the budget's counting iterator, every `~`
through the priced join and every comparison (`==`, `<`, `in`, ...) through the priced compare,
all globals of the sandbox that templates cannot name. A chained comparison (`a < b < c`) then
evaluates all of its operands, as the priced compare is one call.
"""

from __future__ import annotations

from typing import Any, cast

from jinja2 import nodes
from jinja2.visitor import NodeTransformer

from credbatch.templating.budget import Budget, Limits
from credbatch.templating.problems import TEMPLATE_UNSAFE, TemplateProblem

MAX_LOOP_NESTING = 3
ITER_NAME = "_cb_iter"
CONCAT_NAME = "_cb_concat"
COMPARE_NAME = "_cb_compare"
_FORBIDDEN_NAMES = frozenset(
    {"self", "varargs", "kwargs", "caller", ITER_NAME, CONCAT_NAME, COMPARE_NAME}
)


def check_tree(tree: nodes.Template, limits: Limits) -> None:
    """Refuse constructs a credential template never needs, and constant bombs."""
    for node in tree.find_all(
        (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport, nodes.Block)
    ):
        raise TemplateProblem(
            TEMPLATE_UNSAFE,
            f"line {node.lineno}: templates cannot extend, include or import other templates",
        )
    for node in tree.find_all((nodes.Macro, nodes.CallBlock)):
        raise TemplateProblem(TEMPLATE_UNSAFE, f"line {node.lineno}: macros are not supported")
    # These render into a buffer that is joined before anything counts its length.
    for node in tree.find_all((nodes.AssignBlock, nodes.FilterBlock)):
        raise TemplateProblem(
            TEMPLATE_UNSAFE,
            f"line {node.lineno}: {{% set %}} and {{% filter %}} blocks are not supported",
        )
    for loop in tree.find_all(nodes.For):
        if loop.recursive:
            raise TemplateProblem(
                TEMPLATE_UNSAFE, f"line {loop.lineno}: recursive loops are not supported"
            )
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
    _check_constants(tree, limits)


def _check_nesting(node: nodes.Node, depth: int) -> None:
    for child in node.iter_child_nodes():
        inner = depth + 1 if isinstance(child, nodes.For) else depth
        if inner > MAX_LOOP_NESTING:
            raise TemplateProblem(
                TEMPLATE_UNSAFE,
                f"line {child.lineno}: loops nest at most {MAX_LOOP_NESTING} deep",
            )
        _check_nesting(child, inner)


class _NotConstant(Exception):
    pass


def _constant(node: nodes.Node, budget: Budget) -> Any:
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.BinExpr):
        left, right = _constant(node.left, budget), _constant(node.right, budget)
        return budget.arithmetic(node.operator, left, right)
    if isinstance(node, nodes.Neg):
        return -_constant(node.node, budget)
    raise _NotConstant


def _check_constants(tree: nodes.Template, limits: Limits) -> None:
    """Price arithmetic on constants now, so a bomb no trial render reaches is refused."""
    budget = Budget(limits)
    for expression in tree.find_all(nodes.BinExpr):
        try:
            _constant(expression, budget)
        except TemplateProblem as problem:
            message = f"line {expression.lineno}: {problem.message}"
            raise TemplateProblem(problem.code, message) from None
        except Exception:  # noqa: S112 - not constant, or fails only when rendered (1 / 0)
            continue


class _Instrument(NodeTransformer):
    """Route every loop through the budget's iterator, every `~` through the priced join and
    every comparison through the priced compare."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _call(ITER_NAME, [cast(nodes.Expr, node.iter)], node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _call(CONCAT_NAME, node.nodes, node.lineno)

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        self.generic_visit(node)
        args: list[nodes.Expr] = [node.expr]
        for operand in node.ops:
            args += [nodes.Const(operand.op), operand.expr]
        return _call(COMPARE_NAME, args, node.lineno)


def _call(name: str, args: list[nodes.Expr], lineno: int) -> nodes.Call:
    call = nodes.Call(nodes.Name(name, "load"), args, [], None, None)
    call.set_lineno(lineno)
    return call


def instrument(tree: nodes.Template) -> None:
    """Rewrite tree in place (after the checks: its new names start with an underscore)."""
    _Instrument().visit(tree)
