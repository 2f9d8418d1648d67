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

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

ERROR_DOMAIN = "credbatch.dev"


@dataclass(frozen=True)
class FieldViolation:
    """One problem with one field of a request (or one cell of an uploaded file)."""

    field: str
    description: str
    reason: str = ""


class CredbatchError(Exception):
    """Root of every error credbatch raises on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"
    retryable: bool = False
    # Set once the refusal is in the audit trail (credbatch.audit), so the edge, which
    # records the refusals no domain code saw, does not record it twice.
    audited: bool = False

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        violations: Sequence[FieldViolation] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata = dict(metadata or {})
        self.violations = tuple(violations)

    def extra_details(self) -> Sequence[Message]:
        """Further google.rpc detail messages (e.g. QuotaFailure), after ErrorInfo/BadRequest."""
        return ()


class InvalidArgument(CredbatchError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"


class NotFound(CredbatchError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExists(CredbatchError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class FailedPrecondition(CredbatchError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class Unauthenticated(CredbatchError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class PermissionDenied(CredbatchError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class ResourceExhausted(CredbatchError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RESOURCE_EXHAUSTED"


class Unavailable(CredbatchError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"
    retryable = True


class Unimplemented(CredbatchError):
    code = grpc.StatusCode.UNIMPLEMENTED
    reason = "NOT_IMPLEMENTED"


class Aborted(CredbatchError):
    """A concurrency conflict (serialization failure, deadlock): the same call may succeed."""

    code = grpc.StatusCode.ABORTED
    reason = "ABORTED"
    retryable = True


class Cancelled(CredbatchError):
    """The work was cancelled on the server's side (a statement cancelled or timed out)."""

    code = grpc.StatusCode.CANCELLED
    reason = "CANCELLED"


class DeadlineExceeded(CredbatchError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


class Internal(CredbatchError):
    code = grpc.StatusCode.INTERNAL
    reason = "INTERNAL"


def to_status(error: CredbatchError) -> status_pb2.Status:
    """Build the google.rpc.Status for an error: ErrorInfo first, then BadRequest if any."""
    status = status_pb2.Status(code=_code_number(error.code), message=error.message)
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
    )
    packed = any_pb2.Any()
    packed.Pack(info)
    status.details.append(packed)
    if error.violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description, reason=v.reason
                )
                for v in error.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad)
        status.details.append(packed)
    for detail in error.extra_details():
        packed = any_pb2.Any()
        packed.Pack(detail)
        status.details.append(packed)
    return status


def _code_number(code: grpc.StatusCode) -> int:
    value: int = code.value[0]
    return value


def status_code_name(code: int) -> str:
    return str(code_pb2.Code.Name(code))
