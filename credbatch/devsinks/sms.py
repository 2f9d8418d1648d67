"""Twilio-style SMS sink: ``POST /2010-04-01/Accounts/{sid}/Messages.json`` stores JSON files.

Checks basic auth and the form fields (To in E.164, From, Body) like the real API and answers
201 with a message resource. Failure hooks for tests: ``fail_status`` (e.g. 500, 429, 400)
answers every request with that status and a Twilio-style error body; ``throttle()`` answers
the next requests 429 Too Many Requests with a ``Retry-After`` header, as a provider's rate
limit does, and notes when each was refused (``throttled``).

Status callbacks, as the provider sends them: a message posted with a ``StatusCallback``
URL to a number matching one of ``bounce_patterns`` (shell patterns such as ``+1555999*``,
from ``CREDBATCH_DEV_BOUNCE_PATTERN``, comma-separated, shared with the SMTP sink) gets a
signed ``failed`` callback with ErrorCode 30003 (unreachable handset); with ``receipts`` every
other such message gets ``delivered``. Each is posted shortly after the answer and again a
few times while the receiver answers 404 (the send's stamp not written yet) or is away.
``on_callback`` is told of each callback as it is made.

Run: ``python -m credbatch.devsinks.sms --port 8025 --dir .local/sms``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import fnmatch
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from credbatch.delivery import twilio
from credbatch.devsinks.smtp import BOUNCE_PATTERN_VARIABLE, bounce_patterns

log = logging.getLogger(__name__)
_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")


class SmsSinkState:
    """What the sink received and how it should fail."""

    def __init__(self, directory: Path | None, account: str, token: str, keep: bool) -> None:
        self.directory = directory
        self.account = account
        self.token = token
        self.keep = keep
        self.messages: list[dict[str, str]] = []
        self.fail_status: int | None = None
        self.throttle_left = 0
        self.retry_after: str | None = None
        # (To, time.monotonic()) of every request answered 429 by throttle().
        self.throttled: list[tuple[str, float]] = []
        self.bounce_patterns: tuple[str, ...] = ()
        self.receipts = False
        # Callbacks being posted, and (sid, status, HTTP status) of each one answered.
        self.callbacks: set[asyncio.Task[None]] = set()
        self.callbacks_answered: list[tuple[str, str, int]] = []
        # Told (To, status) as each callback is made, before it is posted.
        self.on_callback: Callable[[str, str], None] | None = None
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def throttle(self, requests: int, retry_after: str | None = None) -> None:
        """Answer the next ``requests`` requests 429, with ``Retry-After: retry_after`` if set."""
        self.throttle_left = requests
        self.retry_after = retry_after


def _fails(state: SmsSinkState, to: str) -> bool:
    return any(fnmatch.fnmatchcase(to, p) for p in state.bounce_patterns)


async def _post_callback(state: SmsSinkState, url: str, params: dict[str, str]) -> None:
    headers = {twilio.SIGNATURE_HEADER: twilio.signature(state.token, url, params)}
    async with httpx.AsyncClient(timeout=10.0) as client:
        for pause in (0.1, 0.3, 1.0, 2.0, None):
            await asyncio.sleep(0.05)
            try:
                response = await client.post(url, data=params, headers=headers)
            except httpx.TransportError as error:
                status = 0
                log.debug("status callback not delivered: %s", type(error).__name__)
            else:
                status = response.status_code
                if status != 404 and status < 500:
                    state.callbacks_answered.append(
                        (params["MessageSid"], params["MessageStatus"], status)
                    )
                    return
            if pause is None:
                state.callbacks_answered.append(
                    (params["MessageSid"], params["MessageStatus"], status)
                )
                return
            await asyncio.sleep(pause)


def _callback(state: SmsSinkState, url: str, message: dict[str, str]) -> None:
    if _fails(state, message["to"]):
        status, error_code = "failed", "30003"
    elif state.receipts:
        status, error_code = "delivered", ""
    else:
        return
    params = {
        "AccountSid": state.account,
        "ApiVersion": "2010-04-01",
        "From": message["from"],
        "MessageSid": message["sid"],
        "MessageStatus": status,
        "SmsSid": message["sid"],
        "SmsStatus": status,
        "To": message["to"],
    }
    if error_code:
        params["ErrorCode"] = error_code
    if state.on_callback is not None:
        state.on_callback(message["to"], status)
    task = asyncio.create_task(_post_callback(state, url, params))
    state.callbacks.add(task)
    task.add_done_callback(state.callbacks.discard)


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "status": status}, status_code=status)


def create_app(state: SmsSinkState) -> Starlette:
    async def messages(request: Request) -> Response:
        sid = request.path_params["sid"]
        expected = base64.b64encode(f"{state.account}:{state.token}".encode()).decode()
        if sid != state.account or request.headers.get("authorization") != f"Basic {expected}":
            return _error(401, 20003, "Authentication Error - invalid account or token")
        if state.fail_status is not None:
            return _error(state.fail_status, 20500, f"Injected failure {state.fail_status}")
        # Parsed here: Starlette's form parser needs python-multipart, which we do not ship.
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        to, sender, body = (form.get(k, [""])[0] for k in ("To", "From", "Body"))
        if state.throttle_left > 0:
            state.throttle_left -= 1
            state.throttled.append((to, time.monotonic()))
            response = _error(429, 20429, "Too Many Requests")
            if state.retry_after is not None:
                response.headers["Retry-After"] = state.retry_after
            return response
        if not _E164.match(to):
            return _error(400, 21211, "The 'To' number is not a valid phone number.")
        if not sender or not body:
            return _error(400, 21602, "Message body and From are required.")
        message = {
            "sid": "SM" + uuid.uuid4().hex,
            "to": to,
            "from": sender,
            "body": body,
            "status": "queued",
            "account_sid": sid,
        }
        if state.directory is not None:
            path = state.directory / f"{message['sid']}.json"
            await asyncio.to_thread(path.write_bytes, orjson.dumps(message))
        if state.keep:
            state.messages.append(message)
        callback = form.get("StatusCallback", [""])[0]
        if callback.startswith(("http://", "https://")):
            _callback(state, callback, message)
        return JSONResponse(message, status_code=201)

    return Starlette(
        routes=[Route("/2010-04-01/Accounts/{sid}/Messages.json", messages, methods=["POST"])]
    )


class SmsSink:
    """The SMS sink served by uvicorn on the current event loop (port 0 picks a free port)."""

    def __init__(
        self,
        directory: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        account: str = "ACdev",
        token: str = "dev",  # noqa: S107 - the sink's development credential
        keep: bool = True,
    ) -> None:
        self.state = SmsSinkState(directory, account, token, keep)
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def messages(self) -> list[dict[str, str]]:
        return self.state.messages

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> int:
        config = uvicorn.Config(
            create_app(self.state),
            host=self.host,
            port=self.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("the SMS sink did not start")
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = None
        self._task = None

    async def __aenter__(self) -> SmsSink:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="Local Twilio-style SMS sink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", type=Path, default=Path(".local/sms"))
    parser.add_argument("--account", default="ACdev")
    parser.add_argument("--token", default="dev")
    parser.add_argument(
        "--receipts", action="store_true", help="post a delivered callback for every other message"
    )
    args = parser.parse_args()
    state = SmsSinkState(args.dir, args.account, args.token, keep=False)
    state.bounce_patterns = bounce_patterns(os.environ.get(BOUNCE_PATTERN_VARIABLE))
    state.receipts = args.receipts
    print(f"SMS sink listening on {args.host}:{args.port}, storing into {args.dir}", flush=True)
    uvicorn.run(
        create_app(state), host=args.host, port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
