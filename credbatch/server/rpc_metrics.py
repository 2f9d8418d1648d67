"""The RPC metrics interceptor: one ``rpc.server.call.duration`` sample per RPC.

It sits outside the edge interceptor, so the status it records is the one the caller gets:
authentication failures, mapped domain errors and database failures included. Health checks
and reflection are left out: probes would drown the service's own calls, and a health Watch
lasts as long as the prober keeps it open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from credbatch.metrics import RPC_SERVER_DURATION
from credbatch.server.handlers import Shape, wrap_handler
from credbatch.telemetry import split_method, status_code_of

Context = grpc.aio.ServicerContext[Any, Any]

_INFRASTRUCTURE = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class _Call:
    """Times one RPC and records it with the status it ended with."""

    def __init__(self, attributes: dict[str, str | int]) -> None:
        self._attributes = attributes
        self._start = time.perf_counter()

    def done(self, code: grpc.StatusCode) -> None:
        RPC_SERVER_DURATION.record(
            time.perf_counter() - self._start,
            {**self._attributes, "rpc.grpc.status_code": code.value[0]},
        )

    def failed(self, error: BaseException, context: Context) -> None:
        if isinstance(error, grpc.aio.AbortError):
            # context.abort(...) set the code before raising.
            self.done(status_code_of(context))
        elif isinstance(error, asyncio.CancelledError | GeneratorExit):
            self.done(grpc.StatusCode.CANCELLED)
        else:
            self.done(grpc.StatusCode.UNKNOWN)


class RpcMetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Records ``rpc.server.call.duration`` with rpc.system, rpc.service, rpc.method and
    rpc.grpc.status_code (OpenTelemetry RPC semantic conventions) for every RPC shape."""

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        full_method = handler_call_details.method
        if handler is None or full_method.startswith(_INFRASTRUCTURE):
            return handler
        service, method = split_method(full_method)
        attributes: dict[str, str | int] = {
            "rpc.system": "grpc",
            "rpc.service": service,
            "rpc.method": method,
        }

        async def unary(context: Context, call: Callable[[], Any]) -> Any:
            timing = _Call(attributes)
            try:
                response = await call()
            except BaseException as error:
                timing.failed(error, context)
                raise
            timing.done(status_code_of(context))
            return response

        async def streaming(context: Context, call: Callable[[], Any]) -> AsyncIterator[Any]:
            timing = _Call(attributes)
            try:
                async for item in call():
                    yield item
            except BaseException as error:
                timing.failed(error, context)
                raise
            timing.done(status_code_of(context))

        def around(context: Context, call: Callable[[], Any], shape: Shape) -> Any:
            if shape.response_streaming:
                return streaming(context, call)
            return unary(context, call)

        return wrap_handler(handler, around)
