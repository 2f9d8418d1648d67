from pathlib import Path

import httpx

from credbatch.devsinks.sms import SmsSink


async def test_sink_accepts_twilio_style_posts_and_fails_on_request(tmp_path: Path) -> None:
    async with SmsSink(tmp_path) as sink:
        path = "/2010-04-01/Accounts/ACdev/Messages.json"
        async with httpx.AsyncClient(base_url=sink.url, auth=("ACdev", "dev")) as client:
            ok = await client.post(path, data={"To": "+14155550100", "From": "+1500", "Body": "hi"})
            assert ok.status_code == 201 and ok.json()["to"] == "+14155550100"
            assert len(list(tmp_path.glob("*.json"))) == 1
            bad = await client.post(path, data={"To": "0415", "From": "+1500", "Body": "hi"})
            assert bad.status_code == 400
            for status in (500, 429, 400):
                sink.state.fail_status = status
                failed = await client.post(
                    path, data={"To": "+14155550100", "From": "+1500", "Body": "hi"}
                )
                assert failed.status_code == status
            sink.state.fail_status = None
        async with httpx.AsyncClient(base_url=sink.url, auth=("ACdev", "wrong")) as client:
            denied = await client.post(path, data={"To": "+14155550100", "From": "+1", "Body": "x"})
            assert denied.status_code == 401
        assert [m["body"] for m in sink.messages] == ["hi"]
