"""The edge interceptor: authenticates the caller, applies role rules, maps errors.

Every CredbatchError becomes a google.rpc.Status here, once; so does every database failure
(``credbatch.db.failures``: conflicts ABORTED, a lost or unreachable database UNAVAILABLE, a
cancelled statement CANCELLED or DEADLINE_EXCEEDED); anything else becomes a bare INTERNAL
without details (the traceback is logged, the message is not sent).

A serialization failure or deadlock rolled back the transaction that met it, so the RPC can
simply run again. Where it can, the edge runs it again, three runs in all
(``credbatch.db.retry``), and answers ABORTED past that:

* unary-request RPCs are run again from the start, each run with its own transactions (the
  servicers open them per call). The transaction that met the conflict left nothing behind;
  each servicer writes in one transaction, and where a run committed one before the conflict
  (CancelBatch and RetryFailedRecords read the batch again afterwards) running that write
  again changes nothing;
* server-streaming RPCs likewise, but only until they sent their first message: after that
  the caller has part of an answer, and a conflict is answered ABORTED;
* request-streaming RPCs (UploadBatch) are never run again here: the first run consumed the
  request stream, which cannot be replayed. The upload spools the validated file first and
  stores it in one short transaction, which it runs again itself on a conflict
  (``services.uploads.uploader``); a conflict that outlasts those runs is answered ABORTED,
  the failed runs stored nothing, and the caller sends the file again (with the same
  request_id, a repeat of an upload that did commit returns that batch).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import asyncpg
import grpc
from grpc_status import rpc_status

from credbatch.auth.caller import set_caller
from credbatch.auth.rules import allowed_roles, is_public
from credbatch.auth.tokens import TokenVerifier
from credbatch.db.failures import as_credbatch_error
from credbatch.db.retry import retry_on_conflict
from credbatch.errors import (
    CredbatchError,
    Internal,
    PermissionDenied,
    Unauthenticated,
    Unimplemented,
    to_status,
)
from credbatch.server.audit_refusals import record_refusal
from credbatch.server.handlers import Shape, wrap_handler
from credbatch.tenancy import TenantScope

log = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]


def _bearer(context: Context) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            raise Unauthenticated(
                "authorization metadata must be `Bearer <token>`", reason="INVALID_TOKEN"
            )
    raise Unauthenticated("missing `authorization: Bearer` metadata", reason="MISSING_TOKEN")


def _unimplemented(method: str) -> Unimplemented:
    # Generated base servicers raise NotImplementedError for RPCs not built yet: say so plainly.
    return Unimplemented(
        f"{method.rsplit('/', 1)[-1]} is not implemented yet in this version of credbatch",
        metadata={"method": method},
    )


def _deadline_passed(context: Context) -> bool:
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


def _as_error(exc: Exception, method: str, context: Context) -> CredbatchError:
    if isinstance(exc, CredbatchError):
        return exc
    if isinstance(exc, NotImplementedError):
        return _unimplemented(method)
    database = as_credbatch_error(exc, deadline_passed=_deadline_passed(context))
    if database is not None:
        log.warning("%s: %s (%s)", method, database.reason, type(exc).__name__)
        return database
    # The message is not sent: it may hold anything, personal data included.
    log.exception("unexpected error in %s", method, exc_info=exc)
    return Internal("internal error")


_NOTHING: Any = object()


async def _first(responses: AsyncIterator[Any]) -> tuple[AsyncIterator[Any], Any]:
    """Start a response stream: the stream and its first message (_NOTHING if it is empty)."""
    try:
        return responses, await anext(responses)
    except StopAsyncIteration:
        return responses, _NOTHING


async def abort_with(context: Context, error: CredbatchError) -> None:
    # grpc-stubs lacks abort_with_status on the aio context; grpc.aio has it.
    await cast(Any, context).abort_with_status(rpc_status.to_status(to_status(error)))


class EdgeInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Authenticate, authorise and map errors for every non-infrastructure RPC.

    With ``audit_pool`` (the process's application-role pool), a refusal of an audited RPC
    that no service recorded (``credbatch.server.audit_refusals``) is recorded before the
    caller gets it.
    """

    def __init__(self, verifier: TokenVerifier, audit_pool: asyncpg.Pool | None = None) -> None:
        self._verifier = verifier
        self._audit_pool = audit_pool

    async def _authenticate(self, context: Context) -> TenantScope:
        caller = await self._verifier.verify(_bearer(context))
        set_caller(caller)
        return caller

    @staticmethod
    def _authorise(caller: TenantScope, method: str) -> None:
        if not caller.roles & allowed_roles(method):
            raise PermissionDenied(
                f"roles {sorted(caller.roles) or '[]'} may not call {method.rsplit('/', 1)[-1]}",
                reason="ROLE_NOT_ALLOWED",
                metadata={"method": method},
            )

    async def _abort(
        self, context: Context, method: str, caller: TenantScope | None, exc: Exception
    ) -> None:
        error = _as_error(exc, method, context)
        if caller is not None and self._audit_pool is not None:
            await record_refusal(self._audit_pool, method, caller, error)
        await abort_with(context, error)

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or is_public(method):
            return handler

        async def unary(context: Context, call: Callable[[], Any], shape: Shape) -> Any:
            caller: TenantScope | None = None
            try:
                caller = await self._authenticate(context)
                self._authorise(caller, method)
                if shape.request_streaming:
                    return await call()
                return await retry_on_conflict(call, time_left=context.time_remaining)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await self._abort(context, method, caller, exc)
            finally:
                set_caller(None)

        async def streaming(
            context: Context, call: Callable[[], Any], shape: Shape
        ) -> AsyncIterator[Any]:
            caller: TenantScope | None = None
            try:
                caller = await self._authenticate(context)
                self._authorise(caller, method)
                if shape.request_streaming:
                    responses, first = await _first(call())
                else:
                    responses, first = await retry_on_conflict(
                        lambda: _first(call()), time_left=context.time_remaining
                    )
                if first is _NOTHING:
                    return
                yield first
                async for item in responses:
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                # Past the first message a conflict is not run again: ABORTED at once.
                await self._abort(context, method, caller, exc)
            finally:
                set_caller(None)

        def around(context: Context, call: Callable[[], Any], shape: Shape) -> Any:
            if shape.response_streaming:
                return streaming(context, call, shape)
            return unary(context, call, shape)

        return wrap_handler(handler, around)
