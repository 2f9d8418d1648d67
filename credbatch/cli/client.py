"""Channels, the caller token and gRPC error handling shared by every CLI command.

Every failure a user can cause or meet (service down, token refused, bad input) ends in one
clear line on stderr and a non-zero exit code, never a traceback. Exit codes:
1 other errors, 2 usage, 3 service unreachable, 4 token refused or not allowed, 5 invalid input.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import click
import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from credbatch import names

EXIT_ERROR = 1
EXIT_UNAVAILABLE = 3
EXIT_AUTH = 4
EXIT_INVALID = 5

DEFAULT_ADDRESSES = {
    "templates": "127.0.0.1:50051",
    "uploads": "127.0.0.1:50052",
    "batches": "127.0.0.1:50053",
    "webhooks": "127.0.0.1:50054",
    "tenants": "127.0.0.1:50056",
}
ADDRESS_ENV = {
    "templates": "CREDBATCH_TEMPLATES_ADDR",
    "uploads": "CREDBATCH_UPLOADS_ADDR",
    "batches": "CREDBATCH_BATCHES_ADDR",
    "webhooks": "CREDBATCH_WEBHOOKS_ADDR",
    "tenants": "CREDBATCH_TENANTS_ADDR",
}
SERVICE_NAMES = {
    "templates": "TemplateService",
    "uploads": "UploadService",
    "batches": "BatchStatusService",
    "webhooks": "WebhookService",
    "tenants": "TenantService",
}
# Unary calls get a deadline so a hung server cannot hang the CLI; streams set their own.
UNARY_TIMEOUT = 30.0
MAX_MESSAGE_BYTES = 8 * 1024 * 1024

F = TypeVar("F", bound=Callable[..., Any])
D = TypeVar("D", bound=Message)


class CliError(click.ClickException):
    """A one-line error with its own exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        # click declares exit_code on the class; each error here carries its own.
        self.exit_code = exit_code  # type: ignore[misc]

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


@dataclass(frozen=True)
class Endpoint:
    """Where one service listens and the token to present to it."""

    service: str
    address: str
    token: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)

    @property
    def label(self) -> str:
        return f"{SERVICE_NAMES[self.service]} at {self.address}"


def resolve(service: str, token: str | None, address: str | None) -> Endpoint:
    """The endpoint of `service` from flags, then environment, then the development default."""
    token = token or os.environ.get("CREDBATCH_TOKEN")
    if not token:
        raise CliError(
            "no token: pass --token or set CREDBATCH_TOKEN (mint one with `credbatch token`)",
            EXIT_AUTH,
        )
    address = address or os.environ.get(ADDRESS_ENV[service]) or DEFAULT_ADDRESSES[service]
    return Endpoint(service, address, token.strip())


def token_option(func: F) -> F:
    """`--token`, defaulting to CREDBATCH_TOKEN."""
    return click.option(
        "--token",
        envvar="CREDBATCH_TOKEN",
        show_envvar=True,
        help="Caller token (JWT).",
    )(func)


def address_option(service: str) -> Callable[[F], F]:
    """`--<service>-addr`, defaulting to CREDBATCH_<SERVICE>_ADDR or the development port."""

    def decorate(func: F) -> F:
        return click.option(
            f"--{service}-addr",
            f"{service}_addr",
            envvar=ADDRESS_ENV[service],
            show_envvar=True,
            default=DEFAULT_ADDRESSES[service],
            show_default=True,
            help=f"{SERVICE_NAMES[service]} address (host:port).",
        )(func)

    return decorate


@contextmanager
def channel(endpoint: Endpoint) -> Iterator[grpc.Channel]:
    """An insecure channel to the endpoint, closed on exit."""
    chan = grpc.insecure_channel(
        endpoint.address,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    try:
        yield chan
    finally:
        chan.close()


def status_of(error: grpc.RpcError) -> status_pb2.Status | None:
    """The google.rpc.Status carried in the error's trailers, if any."""
    if not isinstance(error, grpc.Call):
        return None
    try:
        return rpc_status.from_call(error)
    except ValueError:
        return None


def _detail(error: grpc.RpcError, kind: type[D]) -> D | None:
    """The first detail of type `kind` in the error's google.rpc.Status, if there is one."""
    status = status_of(error)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(kind.DESCRIPTOR):
            found = kind()
            detail.Unpack(found)
            return found
    return None


def bad_request(error: grpc.RpcError) -> error_details_pb2.BadRequest | None:
    """The google.rpc.BadRequest detail of an error, if it has one."""
    return _detail(error, error_details_pb2.BadRequest)


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The google.rpc.ErrorInfo detail of an error, if it has one."""
    return _detail(error, error_details_pb2.ErrorInfo)


def describe(error: grpc.RpcError, endpoint: Endpoint) -> CliError:
    """One line for a failed call, with an exit code by status."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = (error.details() if isinstance(error, grpc.Call) else "") or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        return CliError(
            f"cannot reach {endpoint.label}: is it running? "
            f"(set --{endpoint.service}-addr or {ADDRESS_ENV[endpoint.service]})",
            EXIT_UNAVAILABLE,
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return CliError(f"{endpoint.label} did not answer in time", EXIT_UNAVAILABLE)
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return CliError(f"token refused by {endpoint.label}: {details}", EXIT_AUTH)
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return CliError(f"not allowed: {details}", EXIT_AUTH)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        found = bad_request(error)
        lines = [details]
        if found is not None:
            lines += [f"  {v.field}: {v.description}" for v in found.field_violations]
        return CliError("\n".join(lines), EXIT_INVALID)
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return CliError(f"{endpoint.label} does not implement this call yet: {details}")
    return CliError(f"{code.name.lower()}: {details}")


@contextmanager
def rpc_errors(endpoint: Endpoint) -> Iterator[None]:
    """Turn gRPC failures inside the block into one-line CLI errors."""
    try:
        yield
    except grpc.RpcError as error:
        raise describe(error, endpoint) from None


def resource_name(collection: str, value: str) -> str:
    """Accept `collection/id` or a bare id (the server checks the name)."""
    return names.qualify(collection, value)
