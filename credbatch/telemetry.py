"""OpenTelemetry tracing: provider set-up from the OTEL_* variables and a gRPC server interceptor.

``configure_tracing`` follows the standard SDK variables: ``OTEL_SERVICE_NAME`` overrides the
name a process passes, ``OTEL_RESOURCE_ATTRIBUTES`` adds attributes, ``OTEL_SDK_DISABLED=true``
turns tracing off, and spans are exported by OTLP/gRPC (batched) only when
``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (the exporter
reads its other OTEL_EXPORTER_OTLP_* settings itself). Nothing is printed to the console.

No personal data in spans: the interceptor records the method, the status code and the type of
an unexpected exception, never request or response bodies, metadata values, status details or
exception messages (which may quote input).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeAlias

import grpc
import grpc.aio
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

__all__ = [
    "TracingInterceptor",
    "build_tracer_provider",
    "configure_tracing",
    "shutdown_tracing",
    "split_method",
    "status_code_of",
    "tracer",
]

_lock = threading.Lock()
_provider: TracerProvider | None = None

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def build_tracer_provider(
    service_name: str, *, env: Mapping[str, str] | None = None
) -> TracerProvider:
    """A tracer provider configured from the OTEL_* variables, not installed globally.

    Args:
        service_name: the default ``service.name``; ``OTEL_SERVICE_NAME`` wins over it.
        env: the variables to read (default ``os.environ``).
    """
    env = os.environ if env is None else env
    name = env.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    exporter_choice = (env.get("OTEL_TRACES_EXPORTER") or "otlp").strip().lower()
    if (
        not _truthy(env.get("OTEL_SDK_DISABLED"))
        and exporter_choice != "none"
        and any(env.get(key) for key in _ENDPOINT_VARIABLES)
    ):
        # Imported here: the exporter's start-up cost only where it is used.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def configure_tracing(service_name: str, *, env: Mapping[str, str] | None = None) -> TracerProvider:
    """Install the global tracer provider once per process and return it.

    A second call (from any module) returns the provider already installed; so does a call
    made after something else installed an SDK ``TracerProvider``.

    Args:
        service_name: the default ``service.name``; ``OTEL_SERVICE_NAME`` wins over it.
        env: the variables to read (default ``os.environ``).
    """
    global _provider
    with _lock:
        if _provider is not None:
            return _provider
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            _provider = current
            return current
        provider = build_tracer_provider(service_name, env=env)
        trace.set_tracer_provider(provider)
        _provider = provider
        return provider


def shutdown_tracing() -> None:
    """Flush and shut down the provider installed by ``configure_tracing`` (if any).

    The global provider cannot be replaced, so a later ``configure_tracing`` returns the same,
    shut-down provider; call this once, when the process stops.
    """
    with _lock:
        provider = _provider
    if provider is not None:
        provider.shutdown()


def tracer(name: str) -> trace.Tracer:
    """A tracer from the global provider (a proxy until ``configure_tracing`` runs)."""
    return trace.get_tracer(name)


@contextmanager
def span_without_data(tracer_: trace.Tracer, name: str, **kwargs: Any) -> Iterator[trace.Span]:
    """A current span that, on an exception, records only its type, never its message.

    The SDK's defaults record `str(exception)` as an event and in the status description;
    messages may quote personal data (a driver echoing a key, a provider an address).
    """
    with tracer_.start_as_current_span(
        name, record_exception=False, set_status_on_exception=False, **kwargs
    ) as span:
        try:
            yield span
        except BaseException as error:
            span.set_attribute("error.type", type(error).__qualname__)
            span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
            raise


# --- gRPC server interceptor -------------------------------------------------------------------

# Status codes that are the server's fault (OpenTelemetry RPC semantic conventions); the others
# (INVALID_ARGUMENT, NOT_FOUND, ...) are the caller's and leave the span status unset.
_SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)

_Behavior: TypeAlias = Callable[..., Any]


def _metadata_carrier(metadata: Any) -> dict[str, str]:
    carrier: dict[str, str] = {}
    for key, value in metadata or ():
        if isinstance(value, str):
            carrier[key.lower()] = value
    return carrier


def split_method(full_method: str) -> tuple[str, str]:
    """``/package.Service/Method`` as (``package.Service``, ``Method``)."""
    service, _, method = full_method.lstrip("/").rpartition("/")
    return service, method


def status_code_of(context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    """The status an RPC ended with (OK when the handler set none)."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        for candidate in grpc.StatusCode:
            if candidate.value[0] == code:
                return candidate
    return grpc.StatusCode.OK


class _RpcSpans:
    """Opens and finishes the SERVER span of one RPC."""

    def __init__(self, tracer_: trace.Tracer, full_method: str, parent: Context) -> None:
        self._tracer = tracer_
        service, method = split_method(full_method)
        self._name = f"{service}/{method}" if service else full_method
        self._parent = parent
        self._attributes = {
            "rpc.system": "grpc",
            "rpc.service": service,
            "rpc.method": method,
        }

    @contextmanager
    def span(
        self, context: grpc.aio.ServicerContext[Any, Any], *, current: bool = True
    ) -> Iterator[trace.Span]:
        """The RPC's span, ended with its status code; current inside the block unless
        ``current`` is False (streams make it current step by step, see _wrap_behavior)."""
        span = self._tracer.start_span(
            self._name,
            context=self._parent,
            kind=SpanKind.SERVER,
            attributes=self._attributes,
        )
        try:
            if current:
                with trace.use_span(
                    span, end_on_exit=False, record_exception=False, set_status_on_exception=False
                ):
                    yield span
            else:
                yield span
        except grpc.aio.AbortError:
            # context.abort(...) recorded the code before raising.
            self._finish(span, status_code_of(context))
            raise
        except (asyncio.CancelledError, GeneratorExit):
            self._finish(span, grpc.StatusCode.CANCELLED)
            raise
        except Exception as error:
            # Type only: an exception message may quote personal data.
            span.add_event("exception", {"exception.type": type(error).__qualname__})
            self._finish(span, grpc.StatusCode.UNKNOWN)
            raise
        except BaseException:
            self._finish(span, grpc.StatusCode.UNKNOWN)
            raise
        else:
            self._finish(span, status_code_of(context))

    @staticmethod
    def _finish(span: trace.Span, code: grpc.StatusCode) -> None:
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code in _SERVER_ERRORS:
            span.set_status(Status(StatusCode.ERROR, code.name))
        span.end()


def _wrap_behavior(behavior: _Behavior, spans: _RpcSpans) -> _Behavior | None:
    if inspect.isasyncgenfunction(behavior):

        async def stream_behavior(request: Any, context: Any) -> AsyncIterator[Any]:
            # The span is made current around each step of the handler only, attached and
            # detached in the task that runs the step. Held across a yield, the attach would
            # be undone wherever the stream is closed: when a client leaves, grpc closes it
            # from another task, whose context never held the token ("Failed to detach
            # context").
            with spans.span(context, current=False) as span:
                step_context = trace.set_span_in_context(span)
                responses = behavior(request, context)
                try:
                    while True:
                        token = otel_context.attach(step_context)
                        try:
                            response = await anext(responses)
                        except StopAsyncIteration:
                            return
                        finally:
                            otel_context.detach(token)
                        yield response
                finally:
                    # Closes the handler now, here, rather than whenever it is collected.
                    await responses.aclose()

        return stream_behavior
    if inspect.iscoroutinefunction(behavior):

        async def coroutine_behavior(request: Any, context: Any) -> Any:
            with spans.span(context):
                return await behavior(request, context)

        return coroutine_behavior
    # Synchronous behaviours (run by grpc in an executor) are not traced.
    return None


class TracingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Opens one SERVER span per RPC, a child of the caller's W3C ``traceparent``.

    The span is named ``package.Service/Method`` with ``rpc.system``, ``rpc.service``,
    ``rpc.method`` and, at the end, ``rpc.grpc.status_code``; server-side failure codes
    (UNKNOWN, INTERNAL, UNAVAILABLE, ...) also set the span status to ERROR. Works for all
    four RPC shapes, for generator and ``context.write`` streaming, and for ``context.abort``.
    """

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        parent = propagate.extract(_metadata_carrier(handler_call_details.invocation_metadata))
        spans = _RpcSpans(self._tracer, handler_call_details.method, parent)
        if handler.request_streaming and handler.response_streaming:
            behavior, factory = handler.stream_stream, grpc.stream_stream_rpc_method_handler
        elif handler.request_streaming:
            behavior, factory = handler.stream_unary, grpc.stream_unary_rpc_method_handler
        elif handler.response_streaming:
            behavior, factory = handler.unary_stream, grpc.unary_stream_rpc_method_handler
        else:
            behavior, factory = handler.unary_unary, grpc.unary_unary_rpc_method_handler
        wrapped = _wrap_behavior(behavior, spans)
        if wrapped is None:
            return handler
        return factory(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
