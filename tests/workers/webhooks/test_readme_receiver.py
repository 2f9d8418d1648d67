"""The README's receiver example runs and accepts exactly the requests credbatch signs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from credbatch.webhooks import signing
from credbatch.webhooks.secrets import new_secret

README = Path(__file__).resolve().parents[3] / "README.md"


def receiver_source() -> str:
    section = README.read_text(encoding="utf-8").split("\n## Webhooks\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


async def test_the_readme_receiver_verifies_signatures(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = new_secret()
    monkeypatch.setenv("CREDBATCH_WEBHOOK_SECRET", secret)
    namespace: dict[str, Any] = {}
    exec(compile(receiver_source(), "README.md", "exec"), namespace)  # noqa: S102
    body = b'{"data":{"batch":"batches/1"},"type":"batch.completed","timestamp":"t"}'
    headers = signing.headers([secret], "msg_" + "0" * 32, int(time.time()), body)
    transport = httpx.ASGITransport(app=namespace["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        for _ in range(2):
            reply = await client.post("/credbatch", content=body, headers=headers)
            assert reply.status_code == 204
        forged = signing.headers([new_secret()], "msg_" + "0" * 32, int(time.time()), body)
        reply = await client.post("/credbatch", content=body, headers=forged)
        assert reply.status_code == 400
    # Printed once: the duplicate was recognised by its webhook-id.
    assert capsys.readouterr().out.count("batch.completed") == 1
