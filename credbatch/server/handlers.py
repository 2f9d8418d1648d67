"""Wrap the behaviour of any kind of grpc.aio method handler with one `around` function."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc


@dataclass(frozen=True)
class Shape:
    """Which sides of an RPC stream."""

    request_streaming: bool
    response_streaming: bool


# around(context, call, shape) runs the RPC: `call()` starts one run of the handler and returns
# an awaitable for unary responses or an async iterator for streaming ones; `around` must hand
# back the same kind. For a unary request `call` may be called again (the request is kept);
# a streaming request is consumed by the first run.
Around = Callable[[grpc.aio.ServicerContext[Any, Any], Callable[[], Any], Shape], Any]


def wrap_handler(
    handler: grpc.RpcMethodHandler[Any, Any], around: Around
) -> grpc.RpcMethodHandler[Any, Any]:
    """A copy of `handler` whose behaviour runs through `around`."""
    if handler.unary_unary:
        inner: Any = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            return await around(context, lambda: inner(request, context), Shape(False, False))

        return grpc.unary_unary_rpc_method_handler(
            unary_unary, handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary:
        inner_su: Any = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            return await around(context, lambda: inner_su(requests, context), Shape(True, False))

        return grpc.stream_unary_rpc_method_handler(
            stream_unary, handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream:
        inner_us: Any = handler.unary_stream

        async def unary_stream(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            async for item in around(
                context, lambda: inner_us(request, context), Shape(False, True)
            ):
                yield item

        return grpc.unary_stream_rpc_method_handler(
            unary_stream, handler.request_deserializer, handler.response_serializer
        )
    inner_ss: Any = handler.stream_stream

    async def stream_stream(
        requests: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        async for item in around(context, lambda: inner_ss(requests, context), Shape(True, True)):
            yield item

    return grpc.stream_stream_rpc_method_handler(
        stream_stream, handler.request_deserializer, handler.response_serializer
    )
