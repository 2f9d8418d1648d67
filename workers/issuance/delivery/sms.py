"""SMS invitations through a Twilio-style HTTP API, on one reused httpx client."""

from __future__ import annotations

import httpx

from workers.issuance.outcomes import IssuanceFailure, permanent, transient


def _provider_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.text[:200]}"
    if isinstance(body, dict) and "message" in body:
        return f"{response.status_code} {body['message']}"
    return f"{response.status_code} {response.text[:200]}"


class SmsClient:
    """Posts ``Messages.json`` (To in E.164, From, Body) with basic auth."""

    def __init__(
        self,
        base_url: str,
        account: str,
        token: str,
        sender: str,
        *,
        timeout: float = 10.0,
        max_connections: int = 32,
    ) -> None:
        self._path = f"/2010-04-01/Accounts/{account}/Messages.json"
        self._sender = sender
        self._client = httpx.AsyncClient(
            base_url=base_url,
            auth=(account, token),
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )

    async def send(self, to: str, body: str) -> None:
        """Send one SMS.

        Raises:
            IssuanceFailure: transient (connection, timeout, 429, 5xx) or permanent (other 4xx).
        """
        try:
            response = await self._client.post(
                self._path, data={"To": to, "From": self._sender, "Body": body}
            )
        except httpx.TimeoutException:
            raise transient("SMS_TIMEOUT", "SMS provider timed out") from None
        except httpx.TransportError as error:
            raise transient(
                "SMS_UNAVAILABLE", f"SMS provider unavailable: {type(error).__name__}"
            ) from None
        if response.is_success:
            return
        raise _classify(response)

    async def close(self) -> None:
        await self._client.aclose()


def _classify(response: httpx.Response) -> IssuanceFailure:
    message = _provider_message(response)
    if response.status_code == 429 or response.status_code >= 500:
        return transient("SMS_TEMPORARY_FAILURE", message)
    return permanent("SMS_REJECTED", message)
