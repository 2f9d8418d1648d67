"""Credential offers (OpenID for Verifiable Credential Issuance) of the records issued.

An OID4VCI batch's record gets one offer, stored (as digests) in the transaction that
stores its credential, so no credential exists whose offer was lost. The offer's link and
transaction code are derived again for every invitation (``OfferCodes``), which makes a
re-sent invitation carry the same offer. When a batch invites by email and SMS the offer
asks for a transaction code: the link goes by email and the code by SMS, so neither message
alone obtains the credential (credbatch.templating.channels). A batch with one medium has one
message, and its offers ask for no code.

ResendInvitations replaces a record's offer: it deletes it, and the worker stores the record's
next generation (``generations``) when it invites again.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from credbatch.batches.claim_mode import ClaimMode
from credbatch.config import Settings
from credbatch.offer_links import offer_link
from credbatch.signing.offer_codes import OfferCodes, digest
from credbatch.templating import channels
from workers.issuance.context import BatchContext

_INSERT = """
INSERT INTO oid4vci_offers (tenant_id, record_id, code_hash, tx_code_hash, expires_at)
SELECT $1, r, c, t, now() + make_interval(secs => $5)
FROM unnest($2::uuid[], $3::bytea[], $4::bytea[]) AS x (r, c, t)
ON CONFLICT (tenant_id, record_id) DO NOTHING
"""


@dataclass(frozen=True)
class OfferLink:
    """What the invitations carry of a record's offer."""

    offer_url: str  # openid-credential-offer://?credential_offer_uri=...
    tx_code: str | None  # None: the offer asks for no transaction code


def asks_tx_code(context: BatchContext) -> bool:
    return channels.asks_tx_code(context.claim_mode, context.mediums)


class Offers:
    """Derives and stores the offers of OID4VCI records; needs the KEK (``OfferCodes``)."""

    def __init__(self, codes: OfferCodes, offer_ttl: int) -> None:
        self._codes = codes
        self._ttl = offer_ttl

    @classmethod
    def from_settings(cls, settings: Settings) -> Offers:
        return cls(OfferCodes(settings.kek_bytes()), settings.offer_ttl)

    def link(
        self, context: BatchContext, record_id: uuid.UUID, claim_token: str, generation: int = 0
    ) -> OfferLink | None:
        """The record's offer link and code (of its offer ``generation``: see ``OfferCodes``);
        None for a batch that does not use offers."""
        if context.claim_mode is not ClaimMode.OID4VCI:
            return None
        secrets = self._codes.secrets(context.tenant_id, record_id, claim_token, generation)
        return OfferLink(
            offer_url=offer_link(context.issuer, secrets.pre_authorized_code),
            tx_code=secrets.tx_code if asks_tx_code(context) else None,
        )

    async def store(
        self,
        conn: asyncpg.Connection,
        tenant_id: uuid.UUID,
        records: Sequence[tuple[uuid.UUID, str, BatchContext]],
        generations: Mapping[uuid.UUID, int] | None = None,
    ) -> None:
        """Store the offers of ``records`` (those of OID4VCI batches); a stored one is kept.

        ``generations`` gives the offer generation of records whose offer was replaced by a
        resend (absent: 0, the first offer).
        """
        ids: list[uuid.UUID] = []
        codes: list[bytes] = []
        tx_codes: list[bytes | None] = []
        for record_id, claim_token, context in records:
            if context.claim_mode is not ClaimMode.OID4VCI:
                continue
            generation = (generations or {}).get(record_id, 0)
            secrets = self._codes.secrets(tenant_id, record_id, claim_token, generation)
            ids.append(record_id)
            codes.append(digest(secrets.pre_authorized_code))
            tx_codes.append(digest(secrets.tx_code) if asks_tx_code(context) else None)
        if ids:
            await conn.execute(_INSERT, tenant_id, ids, codes, tx_codes, float(self._ttl))
