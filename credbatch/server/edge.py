"""The edge interceptor: authenticates the caller, applies role rules, maps errors.

Every CredbatchError becomes a google.rpc.Status here, once; anything unexpected becomes a
bare INTERNAL without details (the traceback is logged, the message is not sent).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import grpc
from grpc_status import rpc_status

from credbatch.auth.caller import set_caller
from credbatch.auth.rules import allowed_roles, is_public
from credbatch.auth.tokens import TokenVerifier
from credbatch.errors import (
    CredbatchError,
    Internal,
    PermissionDenied,
    Unauthenticated,
    Unimplemented,
    to_status,
)
from credbatch.server.handlers import wrap_handler
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


def _as_error(exc: Exception, method: str) -> CredbatchError:
    if isinstance(exc, CredbatchError):
        return exc
    if isinstance(exc, NotImplementedError):
        return _unimplemented(method)
    # The message is not sent: it may hold anything, personal data included.
    log.exception("unexpected error in %s", method, exc_info=exc)
    return Internal("internal error")


async def abort_with(context: Context, error: CredbatchError) -> None:
    # grpc-stubs lacks abort_with_status on the aio context; grpc.aio has it.
    await cast(Any, context).abort_with_status(rpc_status.to_status(to_status(error)))


class EdgeInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Authenticate, authorise and map errors for every non-infrastructure RPC."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def _authorise(self, context: Context, method: str) -> TenantScope:
        caller = await self._verifier.verify(_bearer(context))
        if not caller.roles & allowed_roles(method):
            raise PermissionDenied(
                f"roles {sorted(caller.roles) or '[]'} may not call {method.rsplit('/', 1)[-1]}",
                reason="ROLE_NOT_ALLOWED",
                metadata={"method": method},
            )
        return caller

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

        async def unary(context: Context, call: Callable[[], Any]) -> Any:
            try:
                set_caller(await self._authorise(context, method))
                return await call()
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await abort_with(context, _as_error(exc, method))
            finally:
                set_caller(None)

        async def streaming(context: Context, call: Callable[[], Any]) -> AsyncIterator[Any]:
            try:
                set_caller(await self._authorise(context, method))
                async for item in call():
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await abort_with(context, _as_error(exc, method))
            finally:
                set_caller(None)

        def around(context: Context, call: Callable[[], Any], stream: bool) -> Any:
            return streaming(context, call) if stream else unary(context, call)

        return wrap_handler(handler, around)
