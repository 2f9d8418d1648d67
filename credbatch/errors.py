"""The one error root of credbatch, and its mapping to google.rpc.Status at the edge.

Domain code raises subclasses of CredbatchError; the edge interceptor
(``credbatch.server.edge.EdgeInterceptor``) turns them into a status with one ErrorInfo
(UPPER_SNAKE reason) and, for bad input, a BadRequest with field violations. Database failures
that are not CredbatchErrors are mapped there too, by asyncpg class (``credbatch.db.failures``).
Messages never carry personal data.

Exceptions deliberately outside this root, because none of them reaches a caller as itself:

* ``credbatch.config.ConfigError``, ``credbatch.db.migrate.MigrationError``,
  ``credbatch.messaging.TopologyMismatchError``: start-up failures that stop the process.
* ``credbatch.cli.client.CliError``: click's own exception type, so click prints it and exits.
* ``credbatch.csvstream.CsvFormatError``, ``credbatch.templating.sandbox.TemplateProblem``:
  inputs to the validators, which turn them into FieldViolations of an InvalidArgument.
* ``credbatch.signing`` (``JoseError``, ``SdJwtError``, ``KeyUnwrapError``),
  ``credbatch.messaging.PublishError``, ``workers.issuance`` (``IssuanceFailure``,
  ``BatchContextError``): worker-side failures decided by the worker (retry, dead-letter, a
  code stored on the record), never sent as a status.
* Private control-flow exceptions (``_Invalid``, ``_RequestTaken``, ``_NothingToDo``) that are
  caught in the module that raises them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from credbatch.gen.common.v1 import error_reason_pb2

ERROR_DOMAIN = "credbatch.dev"

REASONS: frozenset[str] = frozenset(error_reason_pb2.ErrorReason.keys()) - {
    "ERROR_REASON_UNSPECIFIED"
}
"""Every reason credbatch may put in ErrorInfo.reason, BadRequest.FieldViolation.reason or a
validation report's code: the value names of ``credbatch.common.v1.ErrorReason``."""

WHOLE_REQUEST_REASONS = frozenset(
    {
        "INVALID_SCHEMA",
        "INVALID_TEMPLATE",
        "INVALID_UPLOAD_HEADER",
        "INVALID_FILE",
        "INVALID_WEBHOOK_ENDPOINT",
        "TEMPLATE_RENDER_FAILED",
    }
)
"""The reasons of a request checked as a whole: only they may differ from the reason of the
error's first field violation (which is the ErrorInfo reason of every other error)."""

RETRY_CODES = frozenset(
    {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED}
)
"""The codes whose errors say, with a RetryInfo, when the same call may succeed."""


class UnknownReason(ValueError):
    """A reason that ``credbatch.common.v1.ErrorReason`` does not list: a programming error."""


def checked_reason(reason: str) -> str:
    """``reason`` itself when the contract's ErrorReason enum lists it."""
    if reason not in REASONS:
        raise UnknownReason(
            f"{reason!r} is not a credbatch.common.v1.ErrorReason value; add it to "
            "protos/credbatch/common/v1/error_reason.proto"
        )
    return reason


@dataclass(frozen=True)
class FieldViolation:
    """One problem with one field of a request (or one cell of an uploaded file)."""

    field: str
    description: str
    reason: str

    def __post_init__(self) -> None:
        checked_reason(self.reason)


class CredbatchError(Exception):
    """Root of every error credbatch raises on purpose.

    ``reason`` is required unless the class names one: every reason is specific to the error.
    An error with violations has its first violation's reason (given or taken by default),
    unless it is one of WHOLE_REQUEST_REASONS: ErrorInfo and BadRequest never disagree.
    """

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = ""
    retry_delay: float | None = None
    """Seconds after which the same call may succeed (sent as RetryInfo); None: not by waiting."""
    permanent_reasons: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        violations: Sequence[FieldViolation] = (),
        retry_delay: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.violations = tuple(violations)
        if reason is None and self.violations:
            reason = self.violations[0].reason
        if reason is not None:
            self.reason = reason
        if not self.reason:
            raise UnknownReason(f"{type(self).__name__}({message!r}) needs a reason")
        checked_reason(self.reason)
        if (
            self.violations
            and self.reason != self.violations[0].reason
            and self.reason not in WHOLE_REQUEST_REASONS
        ):
            raise UnknownReason(
                f"{self.reason} differs from its first violation's {self.violations[0].reason}"
            )
        self.metadata = dict(metadata or {})
        if retry_delay is not None:
            self.retry_delay = retry_delay
        if (
            self.code in RETRY_CODES
            and self.retry_delay is None
            and self.reason not in self.permanent_reasons
        ):
            raise UnknownReason(
                f"{type(self).__name__} {self.reason} needs a retry_delay (or is permanent)"
            )

    @property
    def retryable(self) -> bool:
        return self.retry_delay is not None

    def extra_details(self) -> Sequence[Message]:
        """Further google.rpc detail messages (e.g. QuotaFailure), after ErrorInfo/BadRequest."""
        return ()


class InvalidArgument(CredbatchError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(CredbatchError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(CredbatchError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(CredbatchError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(CredbatchError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(CredbatchError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(CredbatchError):
    """A limit was reached. Those that waiting lifts carry a retry delay; the per-upload size
    limits do not (the same file is refused again: split it), and say so with no RetryInfo."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    permanent_reasons = frozenset({"FILE_TOO_LARGE", "TOO_MANY_ROWS"})


class Unavailable(CredbatchError):
    code = grpc.StatusCode.UNAVAILABLE
    retry_delay = 1.0


class Unimplemented(CredbatchError):
    code = grpc.StatusCode.UNIMPLEMENTED
    reason = "NOT_IMPLEMENTED"


class Aborted(CredbatchError):
    """A concurrency conflict (serialization failure, deadlock): the same call may succeed."""

    code = grpc.StatusCode.ABORTED
    # Conflicts clear as soon as the other transaction ends: a short pause, not a backoff.
    retry_delay = 0.1


class Cancelled(CredbatchError):
    """The work was cancelled on the server's side (a statement cancelled or timed out)."""

    code = grpc.StatusCode.CANCELLED


class DeadlineExceeded(CredbatchError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Internal(CredbatchError):
    code = grpc.StatusCode.INTERNAL
    reason = "INTERNAL"


def _pack(status: status_pb2.Status, detail: Message) -> None:
    packed = any_pb2.Any()
    packed.Pack(detail)
    status.details.append(packed)


def to_status(error: CredbatchError) -> status_pb2.Status:
    """Build the google.rpc.Status for an error: ErrorInfo first, then BadRequest if any, then
    RetryInfo when waiting may help, then the error's own further details."""
    status = status_pb2.Status(code=_code_number(error.code), message=error.message)
    _pack(
        status,
        error_details_pb2.ErrorInfo(
            reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
        ),
    )
    if error.violations:
        _pack(
            status,
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description, reason=v.reason
                    )
                    for v in error.violations
                ]
            ),
        )
    if error.retry_delay is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(round(error.retry_delay * 1e9))
        _pack(status, error_details_pb2.RetryInfo(retry_delay=delay))
    for detail in error.extra_details():
        _pack(status, detail)
    return status


def _code_number(code: grpc.StatusCode) -> int:
    value: int = code.value[0]
    return value


def status_code_name(code: int) -> str:
    return str(code_pb2.Code.Name(code))
