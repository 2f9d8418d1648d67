"""The public endpoints' client of the internal signer (``services.signer``)."""

from __future__ import annotations

import uuid

import httpx

from services.signer.protocol import BOUND_CREDENTIALS_PATH


class SignerUnavailable(Exception):
    """The signer is not configured, unreachable or refused the call."""


class SignerClient:
    def __init__(self, client: httpx.AsyncClient, token: str | None) -> None:
        self._client = client
        self._token = token

    async def bound_credential(
        self,
        tenant_id: uuid.UUID,
        record_id: uuid.UUID,
        access_token: str,
        holder_jwk: dict[str, str],
    ) -> str | None:
        """The record's credential bound to ``holder_jwk``, spending the wallet's
        ``access_token`` (the signer checks it is a live, unused grant for the record); None
        when it is not."""
        if not self._token:
            raise SignerUnavailable("CREDBATCH_SIGNER_TOKEN is not set")
        try:
            response = await self._client.post(
                BOUND_CREDENTIALS_PATH,
                json={
                    "tenant_id": str(tenant_id),
                    "record_id": str(record_id),
                    "access_token": access_token,
                    "holder_jwk": holder_jwk,
                },
                headers={"Authorization": f"Bearer {self._token}"},
            )
        except httpx.HTTPError as error:
            raise SignerUnavailable(type(error).__name__) from None
        if response.status_code == 403:
            return None
        if response.status_code != 200:
            raise SignerUnavailable(f"the signer answered {response.status_code}")
        credential = response.json().get("credential")
        if not isinstance(credential, str):
            raise SignerUnavailable("the signer's answer has no credential")
        return credential
