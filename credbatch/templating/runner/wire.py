"""The bytes between a service process and its render processes.

Towards a render process, requests are pickled: the service process is the trusted side. Back
from it, nothing is unpickled: a render process runs tenant-written templates, and one whose
sandbox were broken must not reach the service process through the answer. Every answer is a
frame of two lengths, a small JSON header and raw bytes, parsed with size limits and checked
field by field:

    >II (header length, payload length) | header (JSON object) | payload

- ``{"ready": true}``: the process started and warmed up;
- ``{"compiled": true}``: the request's new templates are compiled, its jobs start (sent only
  when the request brought templates);
- ``{"texts": [n1, n2, ...]}``: a job's texts, UTF-8, n1 + n2 + ... bytes of payload;
- ``{"pdf": n}``: a job's PDF, n bytes of payload;
- ``{"code": "...", "message": "..."}``: a job's TemplateProblem.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import socket
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from credbatch.templating.problems import TemplateProblem
from credbatch.templating.runner.jobs import Result, Source

CACHE_SIZE = 64
"""Compiled templates a render process keeps, least recently used first out; its service
process keeps the same account (by the same rule) to send only the templates it lacks."""
COMPILE_SECONDS = 10.0
"""Time (wall clock, and CPU) a render process has to compile a request's new templates:
parsing is linear in the source, and a 100,000-character template takes a second or two."""
FLUSH_SECONDS = 0.005
"""A render process sends the answers of jobs done at most this long after the first of them
(so a request of quick jobs costs its service process one wake-up, not one per job)."""
_LENGTHS = struct.Struct(">II")
_REQUEST_LENGTH = struct.Struct(">I")
MAX_HEADER = 64 * 1024
# Three texts of the largest output at four bytes a character, or a PDF: far below this.
MAX_PAYLOAD = 64 * 1024 * 1024
_CODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_MAX_MESSAGE = 1000


class ProtocolError(Exception):
    """A render process sent something that is not a well-formed answer."""


@dataclass(frozen=True, slots=True)
class WireJob:
    """A job by template keys: a certificate's when cred_url is set."""

    keys: tuple[str, ...]
    values: Mapping[str, Any]
    cred_url: str | None
    seconds: float  # its time budget; the render process's CPU limit for it follows


@dataclass(frozen=True, slots=True)
class Request:
    """Templates the process has not compiled yet (in use order), then the jobs."""

    sources: Sequence[tuple[str, Source]]
    keys: Sequence[str]  # every key the request uses, in use order (for the cache)
    jobs: Sequence[WireJob]


# --- service process side -------------------------------------------------------------


def encode_request(request: Request) -> bytes:
    body = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
    return _REQUEST_LENGTH.pack(len(body)) + body


async def read_frame(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes]:
    """One answer frame; raises ProtocolError, or IncompleteReadError when the process ended."""
    header_length, payload_length = _LENGTHS.unpack(await reader.readexactly(_LENGTHS.size))
    if header_length > MAX_HEADER or payload_length > MAX_PAYLOAD:
        raise ProtocolError("frame too large")
    try:
        header = json.loads(await reader.readexactly(header_length))
    except ValueError:
        raise ProtocolError("header is not JSON") from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not an object")
    return header, await reader.readexactly(payload_length)


def decode_result(header: Mapping[str, Any], payload: bytes) -> Result:
    """A job's result from its frame; raises ProtocolError for anything else."""
    if set(header) == {"texts"}:
        lengths = header["texts"]
        if not isinstance(lengths, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in lengths
        ):
            raise ProtocolError("bad text lengths")
        if sum(lengths) != len(payload):
            raise ProtocolError("text lengths do not match the payload")
        texts, offset = [], 0
        for length in lengths:
            texts.append(payload[offset : offset + length].decode("utf-8", "surrogatepass"))
            offset += length
        return tuple(texts)
    if set(header) == {"pdf"}:
        if header["pdf"] != len(payload):
            raise ProtocolError("PDF length does not match the payload")
        return payload
    if set(header) == {"code", "message"}:
        code, message = header["code"], header["message"]
        if not (isinstance(code, str) and 0 < len(code) <= 64 and set(code) <= _CODE_CHARS):
            raise ProtocolError("bad problem code")
        if not isinstance(message, str) or payload:
            raise ProtocolError("bad problem message")
        return TemplateProblem(code, message[:_MAX_MESSAGE])
    raise ProtocolError("unknown frame")


def expect(header: Mapping[str, Any], flag: str) -> None:
    if header != {flag: True}:
        raise ProtocolError(f"expected {flag}")


# --- render process side --------------------------------------------------------------


def read_request(sock: socket.socket) -> Request | None:
    """The next request, or None when the service process closed the connection."""
    head = _receive(sock, _REQUEST_LENGTH.size)
    if head is None:
        return None
    (length,) = _REQUEST_LENGTH.unpack(head)
    body = _receive(sock, length)
    if body is None:
        return None
    request = pickle.loads(body)  # noqa: S301 - from the service process that started us
    assert isinstance(request, Request)
    return request


def _receive(sock: socket.socket, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def flag_frame(flag: str) -> bytes:
    return _frame({flag: True}, b"")


def result_frame(result: Result) -> bytes:
    if isinstance(result, TemplateProblem):
        return _frame({"code": result.code, "message": result.message[:_MAX_MESSAGE]}, b"")
    if isinstance(result, bytes):
        return _frame({"pdf": len(result)}, result)
    encoded = [text.encode("utf-8", "surrogatepass") for text in result]
    return _frame({"texts": [len(part) for part in encoded]}, b"".join(encoded))


def _frame(header: Mapping[str, Any], payload: bytes) -> bytes:
    encoded = json.dumps(header, separators=(",", ":")).encode()
    return _LENGTHS.pack(len(encoded), len(payload)) + encoded + payload
