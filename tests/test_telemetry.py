"""Tracing set-up, the gRPC TracingInterceptor (real grpc.aio server) and JSON logging."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import grpc.aio
import pytest
import pytest_asyncio
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from credbatch.config import ConfigError
from credbatch.logging import configure_logging
from credbatch.telemetry import (
    TracingInterceptor,
    build_tracer_provider,
    configure_tracing,
    span_without_data,
    tracer,
)

SERVICE = "test.v1.Echo"
TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
PARENT_SPAN_ID = 0xB7AD6B7169203331
TRACEPARENT = f"00-{TRACE_ID:032x}-{PARENT_SPAN_ID:016x}-01"
SECRET = "holder@example.com"


# --- provider -----------------------------------------------------------------------------------


def _processors(provider: TracerProvider) -> tuple[Any, ...]:
    return tuple(provider._active_span_processor._span_processors)


def test_configure_tracing_is_idempotent(span_exporter: InMemorySpanExporter) -> None:
    first = configure_tracing("one")
    assert configure_tracing("two") is first
    assert trace.get_tracer_provider() is first


def test_provider_exports_by_otlp_only_when_an_endpoint_is_set() -> None:
    assert _processors(build_tracer_provider("svc", env={})) == ()
    with_endpoint = build_tracer_provider(
        "svc", env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}
    )
    assert [type(p) for p in _processors(with_endpoint)] == [BatchSpanProcessor]
    traces_only = build_tracer_provider(
        "svc", env={"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317"}
    )
    assert len(_processors(traces_only)) == 1
    disabled = build_tracer_provider(
        "svc",
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_SDK_DISABLED": "true"},
    )
    assert _processors(disabled) == ()
    for provider in (with_endpoint, traces_only):
        provider.shutdown()


def test_otel_service_name_overrides() -> None:
    named = build_tracer_provider("uploads", env={})
    assert named.resource.attributes["service.name"] == "uploads"
    overridden = build_tracer_provider("uploads", env={"OTEL_SERVICE_NAME": "uploads-eu"})
    assert overridden.resource.attributes["service.name"] == "uploads-eu"


# --- gRPC interceptor ---------------------------------------------------------------------------


def _same(data: bytes) -> bytes:
    """Bytes in, bytes out: no protos needed for these RPCs."""
    return data


async def unary(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    with tracer("test.handler").start_as_current_span("inner"):
        return request.upper()


async def unary_abort(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"bad value {SECRET}")
    raise AssertionError("abort returned")


async def unary_internal(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await context.abort(grpc.StatusCode.INTERNAL, "database unavailable")
    raise AssertionError("abort returned")


async def unary_crash(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    raise RuntimeError(f"unexpected {SECRET}")


async def unary_set_code(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    context.set_code(grpc.StatusCode.NOT_FOUND)
    return b""


async def unary_stream(
    request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
) -> AsyncIterator[bytes]:
    for i in range(3):
        yield request + str(i).encode()


async def unary_stream_write(
    request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
) -> None:
    for i in range(2):
        await context.write(request + str(i).encode())


async def unary_stream_abort(
    request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
) -> AsyncIterator[bytes]:
    yield b"first"
    await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "stop")


async def stream_unary(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
) -> bytes:
    return b"".join([chunk async for chunk in requests])


async def stream_stream(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext[bytes, bytes]
) -> AsyncIterator[bytes]:
    async for chunk in requests:
        yield chunk[::-1]


async def slow(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
    await asyncio.sleep(30)
    return request


HANDLERS = {
    "Unary": grpc.unary_unary_rpc_method_handler(unary),
    "UnaryAbort": grpc.unary_unary_rpc_method_handler(unary_abort),
    "UnaryInternal": grpc.unary_unary_rpc_method_handler(unary_internal),
    "UnaryCrash": grpc.unary_unary_rpc_method_handler(unary_crash),
    "UnarySetCode": grpc.unary_unary_rpc_method_handler(unary_set_code),
    "UnaryStream": grpc.unary_stream_rpc_method_handler(unary_stream),
    "UnaryStreamWrite": grpc.unary_stream_rpc_method_handler(unary_stream_write),
    "UnaryStreamAbort": grpc.unary_stream_rpc_method_handler(unary_stream_abort),
    "StreamUnary": grpc.stream_unary_rpc_method_handler(stream_unary),
    "StreamStream": grpc.stream_stream_rpc_method_handler(stream_stream),
    "Slow": grpc.unary_unary_rpc_method_handler(slow),
}


@pytest_asyncio.fixture(loop_scope="session")
async def grpc_channel(span_exporter: InMemorySpanExporter) -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=[TracingInterceptor()])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, HANDLERS),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(None)


async def _server_spans(spans: InMemorySpanExporter, count: int = 1) -> list[ReadableSpan]:
    for _ in range(200):
        found = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {count} server span(s), got {spans.get_finished_spans()}")


async def _only_span(spans: InMemorySpanExporter, method: str) -> ReadableSpan:
    (span,) = await _server_spans(spans)
    assert span.name == f"{SERVICE}/{method}"
    assert span.attributes is not None
    assert span.attributes["rpc.system"] == "grpc"
    assert span.attributes["rpc.service"] == SERVICE
    assert span.attributes["rpc.method"] == method
    return span


def _status(span: ReadableSpan) -> tuple[int | None, StatusCode]:
    assert span.attributes is not None
    code = span.attributes.get("rpc.grpc.status_code")
    assert code is None or isinstance(code, int)
    return code, span.status.status_code


def _no_secret(span: ReadableSpan) -> None:
    dumped = span.to_json()
    assert SECRET not in dumped


async def test_unary_span_is_child_of_caller(
    spans: InMemorySpanExporter, grpc_channel: grpc.aio.Channel
) -> None:
    call = grpc_channel.unary_unary(f"/{SERVICE}/Unary", _same, _same)
    assert await call(b"abc", metadata=(("traceparent", TRACEPARENT),)) == b"ABC"
    span = await _only_span(spans, "Unary")
    assert span.kind is SpanKind.SERVER
    assert _status(span) == (0, StatusCode.UNSET)
    assert span.context is not None and span.context.trace_id == TRACE_ID
    assert span.parent is not None and span.parent.span_id == PARENT_SPAN_ID
    # The handler's own spans nest under the RPC span.
    (inner,) = [s for s in spans.get_finished_spans() if s.name == "inner"]
    assert inner.parent is not None and inner.parent.span_id == span.context.span_id


async def test_unary_without_traceparent_starts_a_trace(
    spans: InMemorySpanExporter, grpc_channel: grpc.aio.Channel
) -> None:
    await grpc_channel.unary_unary(f"/{SERVICE}/Unary", _same, _same)(b"x")
    span = await _only_span(spans, "Unary")
    assert span.parent is None


@pytest.mark.parametrize(
    ("method", "code", "span_status"),
    [
        ("UnaryAbort", grpc.StatusCode.INVALID_ARGUMENT, StatusCode.UNSET),
        ("UnaryInternal", grpc.StatusCode.INTERNAL, StatusCode.ERROR),
        ("UnaryCrash", grpc.StatusCode.UNKNOWN, StatusCode.ERROR),
        ("UnarySetCode", grpc.StatusCode.NOT_FOUND, StatusCode.UNSET),
    ],
)
async def test_unary_failures(
    method: str,
    code: grpc.StatusCode,
    span_status: StatusCode,
    spans: InMemorySpanExporter,
    grpc_channel: grpc.aio.Channel,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await grpc_channel.unary_unary(f"/{SERVICE}/{method}", _same, _same)(b"x")
    assert caught.value.code() == code
    span = await _only_span(spans, method)
    assert _status(span) == (code.value[0], span_status)
    _no_secret(span)


async def test_unary_stream_generator(
    spans: InMemorySpanExporter, grpc_channel: grpc.aio.Channel
) -> None:
    call = grpc_channel.unary_stream(f"/{SERVICE}/UnaryStream", _same, _same)(b"r")
    assert [m async for m in call] == [b"r0", b"r1", b"r2"]
    span = await _only_span(spans, "UnaryStream")
    assert _status(span) == (0, StatusCode.UNSET)


async def test_unary_stream_with_context_write(
    spans: InMemorySpanExporter, grpc_channel: grpc.aio.Channel
) -> None:
    call = grpc_channel.unary_stream(f"/{SERVICE}/UnaryStreamWrite", _same, _same)(b"w")
    assert [m async for m in call] == [b"w0", b"w1"]
    span = await _only_span(spans, "UnaryStreamWrite")
    assert _status(span) == (0, StatusCode.UNSET)


async def test_unary_stream_abort(
    spans: InMemorySpanExporter, grpc_channel: grpc.aio.Channel
) -> None:
    call = grpc_channel.unary_stream(f"/{SERVICE}/UnaryStreamAbort", _same, _same)(b"x")
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for message in call:
            received.append(message)
    assert received == [b"first"]
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    span = await _only_span(spans, "UnaryStreamAbort")
    assert _status(span) == (grpc.StatusCode.FAILED_PRECONDITION.value[0], StatusCode.UNSET)


async def test_stream_unary(spans: InMemorySpanExporter, grpc_channel: grpc.aio.Channel) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b"a", b"b", b"c"):
            yield chunk

    call = grpc_channel.stream_unary(f"/{SERVICE}/StreamUnary", _same, _same)
    assert await call(chunks(), metadata=(("traceparent", TRACEPARENT),)) == b"abc"
    span = await _only_span(spans, "StreamUnary")
    assert span.parent is not None and span.parent.span_id == PARENT_SPAN_ID
    assert _status(span) == (0, StatusCode.UNSET)


async def test_stream_stream(spans: InMemorySpanExporter, grpc_channel: grpc.aio.Channel) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b"ab", b"cd"):
            yield chunk

    call = grpc_channel.stream_stream(f"/{SERVICE}/StreamStream", _same, _same)(chunks())
    assert [m async for m in call] == [b"ba", b"dc"]
    span = await _only_span(spans, "StreamStream")
    assert _status(span) == (0, StatusCode.UNSET)


async def test_one_span_per_rpc(
    spans: InMemorySpanExporter, grpc_channel: grpc.aio.Channel
) -> None:
    call = grpc_channel.unary_unary(f"/{SERVICE}/Unary", _same, _same)
    await asyncio.gather(*(call(b"x") for _ in range(5)))
    found = await _server_spans(spans, 5)
    assert len(found) == 5
    assert len({s.context.span_id for s in found if s.context is not None}) == 5


async def test_cancelled_rpc(spans: InMemorySpanExporter, grpc_channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await grpc_channel.unary_unary(f"/{SERVICE}/Slow", _same, _same)(b"x", timeout=0.2)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    span = await _only_span(spans, "Slow")
    assert _status(span)[0] == grpc.StatusCode.CANCELLED.value[0]


async def test_unknown_method_is_not_traced(
    spans: InMemorySpanExporter, grpc_channel: grpc.aio.Channel
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await grpc_channel.unary_unary(f"/{SERVICE}/Missing", _same, _same)(b"x")
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER] == []


# --- logging ------------------------------------------------------------------------------------


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def test_json_logs_carry_trace_ids(spans: InMemorySpanExporter, restore_root_logger: None) -> None:
    stream = io.StringIO()
    configure_logging("uploads", env={"CREDBATCH_LOG_LEVEL": "debug"}, stream=stream)
    log = logging.getLogger("credbatch.test")
    log.debug("outside", extra={"batch_id": "b-1"})
    with tracer("test").start_as_current_span("work") as span:
        log.info("inside %s", "span")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "DEBUG"
    assert first["service"] == "uploads"
    assert first["logger"] == "credbatch.test"
    assert first["message"] == "outside"
    assert first["batch_id"] == "b-1"
    assert "trace_id" not in first
    context = span.get_span_context()
    assert second["message"] == "inside span"
    assert second["trace_id"] == f"{context.trace_id:032x}"
    assert second["span_id"] == f"{context.span_id:016x}"


def test_log_level_and_replacement(restore_root_logger: None) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("svc", env={}, stream=first)
    configure_logging("svc", env={"CREDBATCH_LOG_LEVEL": "WARNING"}, stream=second)
    logging.getLogger("credbatch.test").info("dropped")
    address, phone = "alice@example.com", "+14155550100"
    try:
        try:
            raise KeyError(address)
        except KeyError as cause:
            raise ValueError(phone) from cause
    except ValueError:
        logging.getLogger("credbatch.test").exception("failed")
    assert first.getvalue() == ""
    (line,) = second.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    # Types and frames are logged; exception messages (which may quote data) are not.
    assert "builtins.ValueError (message withheld)" in entry["exc_info"]
    assert "builtins.KeyError (message withheld)" in entry["exc_info"]
    assert "test_log_level_and_replacement" in entry["exc_info"]
    assert address not in line and phone not in line
    with pytest.raises(ConfigError, match="CREDBATCH_LOG_LEVEL"):
        configure_logging("svc", env={"CREDBATCH_LOG_LEVEL": "loud"})


def test_span_without_data_keeps_the_error_type_only(spans: InMemorySpanExporter) -> None:
    address = "alice@example.com"
    with pytest.raises(ValueError), span_without_data(tracer("test"), "work"):
        raise ValueError(address)
    (span,) = spans.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "ValueError"
    assert span.attributes is not None and span.attributes["error.type"] == "ValueError"
    assert not span.events
    assert address not in str(span.to_json())
