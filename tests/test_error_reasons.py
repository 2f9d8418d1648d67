"""Error reasons are part of the contract: every reason the code can send is a value of
credbatch.common.v1.ErrorReason, docs/errors.md is generated from it, ErrorInfo and BadRequest
agree, and the retryable codes say when to retry."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest
from google.rpc import error_details_pb2, status_pb2

from credbatch import names
from credbatch.codegen import ERRORS_DOC, ROOT, errors_doc
from credbatch.errors import (
    REASONS,
    Aborted,
    CredbatchError,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
    UnknownReason,
    to_status,
)

# The code that builds errors and the problems that become their violations (the CLI only
# reads them).
SCANNED = ("credbatch", "services")
SKIPPED = ("credbatch/gen", "credbatch/cli")
# Constructors whose string arguments include a reason: violations, and the problems of a cell,
# a header, a CSV row, a template or a file that become violations.
SINKS = frozenset(
    {
        "FieldViolation",
        "CellError",
        "_Invalid",
        "HeaderProblem",
        "TemplateProblem",
        "CsvFormatError",
        "Issue",
        "_problem",
        "_stream_error",
        "_invalid",
    }
)
_CODE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")


# Parsed once for the module's tests: the trees are only read.
@cache
def _sources() -> dict[Path, ast.Module]:
    found = {}
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if not relative.startswith(SKIPPED):
                found[path] = ast.parse(path.read_text(), filename=relative)
    return found


def _error_classes(trees: dict[Path, ast.Module]) -> set[str]:
    classes = {"CredbatchError"}
    grew = True
    while grew:
        grew = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in classes:
                    bases = {getattr(b, "id", getattr(b, "attr", None)) for b in node.bases}
                    if bases & classes:
                        classes.add(node.name)
                        grew = True
    return classes


def _constants(trees: dict[Path, ast.Module]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for tree in trees.values():
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                        found[target.id].add(node.value.value)
    return found


@cache
def reasons_in_code() -> dict[str, set[str]]:
    """Every reason-like string the code passes where a reason goes, with where."""
    trees = _sources()
    errors = _error_classes(trees)
    constants = _constants(trees)

    def values(node: ast.expr) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.Name):
            return constants.get(node.id, set())
        if isinstance(node, ast.Attribute):
            return constants.get(node.attr, set())
        return set()

    found: dict[str, set[str]] = defaultdict(set)
    for path, tree in trees.items():
        where = path.relative_to(ROOT).as_posix()
        for node in ast.walk(tree):
            given: list[ast.expr] = []
            if isinstance(node, ast.ClassDef) and node.name in errors:
                given = [
                    s.value
                    for s in node.body
                    if isinstance(s, ast.Assign)
                    and any(getattr(t, "id", None) == "reason" for t in s.targets)
                ]
            elif isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name in errors:
                    given = [k.value for k in node.keywords if k.arg == "reason"]
                elif name in SINKS:
                    given = [*node.args, *(k.value for k in node.keywords)]
            for expr in given:
                for value in values(expr):
                    if _CODE.fullmatch(value):
                        found[value].add(f"{where}:{getattr(expr, 'lineno', '?')}")
    return found


def test_every_reason_the_code_sends_is_in_the_error_reason_enum() -> None:
    found = reasons_in_code()
    missing = {reason: sorted(where) for reason, where in found.items() if reason not in REASONS}
    assert missing == {}, "add these to protos/credbatch/common/v1/error_reason.proto"
    # The scan sees the code's reasons (a scan that finds nothing proves nothing).
    assert {"SCHEMA_NOT_FOUND", "INVALID_EMAIL", "TEMPLATE_UNSAFE", "NOT_UTF8"} <= set(found)


def test_every_enum_value_is_sent_somewhere() -> None:
    # A value nothing sends any more is documentation of a reason that does not exist.
    assert sorted(REASONS - set(reasons_in_code())) == []


def test_docs_errors_md_is_generated_from_the_proto() -> None:
    assert ERRORS_DOC.read_text() == errors_doc(), "run `make protos`"
    for reason in REASONS:
        assert f"| `{reason}` |" in ERRORS_DOC.read_text()


def test_an_unlisted_reason_is_refused_when_the_error_is_built() -> None:
    with pytest.raises(UnknownReason):
        NotFound("no such thing", reason="NO_SUCH_THING")
    with pytest.raises(UnknownReason):
        FieldViolation("name", "bad", "BAD")
    with pytest.raises(UnknownReason):
        NotFound("a generic error")


def _details(status: status_pb2.Status) -> dict[str, object]:
    found: dict[str, object] = {}
    for detail in status.details:
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.RetryInfo,
        ):
            message = kind()
            if detail.Unpack(message):
                found[kind.__name__] = message
    return found


def test_an_empty_name_is_required_in_error_info_and_bad_request_alike() -> None:
    with pytest.raises(InvalidArgument) as caught:
        names.parse_name("", names.BATCHES, "name")
    details = _details(to_status(caught.value))
    info = details["ErrorInfo"]
    bad = details["BadRequest"]
    assert isinstance(info, error_details_pb2.ErrorInfo)
    assert isinstance(bad, error_details_pb2.BadRequest)
    assert info.reason == "REQUIRED"
    assert [v.reason for v in bad.field_violations] == ["REQUIRED"]


def test_error_info_may_differ_from_the_first_violation_only_for_a_whole_request() -> None:
    violation = FieldViolation("schema.display_name", "is required", "REQUIRED")
    assert InvalidArgument("bad schema", reason="INVALID_SCHEMA", violations=[violation])
    with pytest.raises(UnknownReason):
        InvalidArgument("bad", reason="INVALID_NAME", violations=[violation])


@pytest.mark.parametrize(
    ("error", "seconds"),
    [
        (Unavailable("down", reason="DATABASE_UNAVAILABLE"), 1.0),
        (Aborted("conflict", reason="TRANSACTION_CONFLICT"), 0.1),
        (ResourceExhausted("busy", reason="WATCH_LIMIT", retry_delay=5.0), 5.0),
    ],
)
def test_retryable_codes_carry_retry_info(error: CredbatchError, seconds: float) -> None:
    retry = _details(to_status(error))["RetryInfo"]
    assert isinstance(retry, error_details_pb2.RetryInfo)
    assert retry.retry_delay.ToNanoseconds() == round(seconds * 1e9)


def test_a_limit_waiting_does_not_lift_carries_no_retry_info() -> None:
    error = ResourceExhausted("split the file", reason="FILE_TOO_LARGE")
    assert "RetryInfo" not in _details(to_status(error))
    # Any other RESOURCE_EXHAUSTED must say when to retry.
    with pytest.raises(UnknownReason):
        ResourceExhausted("busy", reason="TOO_MANY_UPLOADS")


def test_every_resource_exhausted_the_code_builds_says_when_to_retry() -> None:
    permanent = ResourceExhausted.permanent_reasons
    undecided = []
    trees = _sources()
    constants = _constants(trees)
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            if name != "ResourceExhausted":
                continue
            keywords = {k.arg: k.value for k in node.keywords}
            reason = keywords.get("reason")
            given: set[str] = set()
            if isinstance(reason, ast.Constant) and isinstance(reason.value, str):
                given = {reason.value}
            elif isinstance(reason, ast.Name):
                given = constants.get(reason.id, set())
            if "retry_delay" not in keywords and not (given and given <= permanent):
                undecided.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert undecided == []
    # Unavailable and Aborted have a class delay; their subclasses inherit it.
    assert Unavailable.retry_delay is not None and Aborted.retry_delay is not None


def test_every_error_the_code_builds_has_a_reason() -> None:
    # A reason given, violations to take it from, or a class that names its own.
    trees = _sources()
    errors = _error_classes(trees)
    own_reason = {
        node.name
        for tree in trees.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and node.name in errors
        and any(
            isinstance(s, ast.Assign) and any(getattr(t, "id", None) == "reason" for t in s.targets)
            for s in node.body
        )
    }
    assert {"Internal", "Unimplemented"} <= own_reason
    reasonless = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            given = {k.arg for k in node.keywords}
            if name in errors - own_reason and not given & {"reason", "violations"}:
                reasonless.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert reasonless == []
