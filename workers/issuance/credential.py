"""What one record's credential and certificate say, built from the record and its batch.

``draft_credential`` is pure: the random ids (``new_identifiers``), the status-list entry
and the time of issue come in as arguments, so the same inputs always build the same draft;
signing and rendering happen in the handler, each in its span.
The schema's attributes and ``Cred_URL`` are selectively disclosable (the certificate the link
leads to shows every attribute, so the holder decides who gets it); what a verifier needs
before any disclosure (issuer, type, times, status entry) is always visible.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from credbatch.signing import opaque
from credbatch.signing.status_list import StatusEntry, list_uri
from credbatch.templating.certificate import CompiledCertificate
from credbatch.templating.placeholders import CRED_URL
from workers.issuance.certificates import cred_url, new_certificate_id
from workers.issuance.context import BatchContext
from workers.issuance.rendering import template_values


@dataclass(frozen=True)
class Holder:
    """A record's holder as the CSV row gave it."""

    record_id: uuid.UUID
    email: str | None
    phone: str | None
    attributes: dict[str, Any]
    # Which send of the email invitation this is (records.email_send): the VERP token's.
    email_send: int = 0


@dataclass(frozen=True)
class Identifiers:
    """The unguessable ids a new credential is reached by (each carries its tenant)."""

    claim_token: str
    certificate_id: str | None  # None: the batch issues no certificate


def new_identifiers(tenant_id: uuid.UUID, context: BatchContext) -> Identifiers:
    certificate_id = new_certificate_id(tenant_id) if context.certificate is not None else None
    return Identifiers(claim_token=opaque.new_id(tenant_id), certificate_id=certificate_id)


@dataclass(frozen=True)
class Links:
    """Where the holder claims the credential, and where its certificate is (if any)."""

    claim_token: str
    claim_url: str
    cred_url: str | None
    offer_generation: int = 0  # of the record's current offer (see OfferCodes)


def links_for(
    public_url: str, claim_token: str, certificate_id: str | None, offer_generation: int = 0
) -> Links:
    return Links(
        claim_token=claim_token,
        claim_url=f"{public_url}/claim/{claim_token}",
        cred_url=cred_url(public_url, certificate_id) if certificate_id is not None else None,
        offer_generation=offer_generation,
    )


@dataclass(frozen=True)
class CertificateInputs:
    """What the certificate's PDF is rendered from."""

    template: CompiledCertificate
    values: dict[str, str]  # the template's placeholders
    cred_url: str  # drawn as the certificate's QR code


@dataclass(frozen=True)
class CredentialDraft:
    """Everything a credential needs but its signature (and its certificate's PDF)."""

    ids: Identifiers
    links: Links
    claims: dict[str, Any]
    disclosable: dict[str, Any]
    expires_at: datetime | None
    certificate: CertificateInputs | None  # None: the batch issues no certificate


def holder_values(
    context: BatchContext, holder: Holder, links: Links, issue_date: date
) -> dict[str, str]:
    """The placeholders of the holder's certificate, email and SMS."""
    return template_values(
        context.schema,
        holder.attributes,
        email=holder.email,
        phone=holder.phone,
        claim_url=links.claim_url,
        cred_url=links.cred_url,
        issuer_name=context.display.name() or context.schema.display_name,
        issue_date=issue_date,
        issuer=context.display,
    )


def draft_credential(
    context: BatchContext,
    holder: Holder,
    *,
    ids: Identifiers,
    status: StatusEntry,
    issued_at: int,
    public_url: str,
) -> CredentialDraft:
    """The claims of ``holder``'s credential issued at ``issued_at`` (seconds since epoch)."""
    links = links_for(public_url, ids.claim_token, ids.certificate_id)
    claims: dict[str, Any] = {
        "iss": context.issuer,
        "vct": context.vct,
        "iat": issued_at,
        "status": {
            "status_list": {
                "idx": status.index,
                "uri": list_uri(public_url, context.tenant_id, status.list_id),
            }
        },
    }
    if context.vct_integrity:
        # The digest of the type metadata the vct URL serves, so a wallet knows it has the
        # document the issuer signed for.
        claims["vct#integrity"] = context.vct_integrity
    expires_at = None
    if context.validity_seconds:
        claims["exp"] = issued_at + context.validity_seconds
        expires_at = datetime.fromtimestamp(issued_at, UTC) + timedelta(
            seconds=context.validity_seconds
        )
    # Absent optional values are left out rather than disclosed as null.
    disclosable = {
        name: holder.attributes[name]
        for name in context.attribute_names
        if holder.attributes.get(name) is not None
    }
    if links.cred_url is not None:
        # No attribute is named Cred_URL: schemas reserve the name.
        disclosable[CRED_URL] = links.cred_url
    certificate = None
    if context.certificate is not None and links.cred_url is not None:
        certificate = CertificateInputs(
            template=context.certificate,
            values=holder_values(
                context, holder, links, datetime.fromtimestamp(issued_at, UTC).date()
            ),
            cred_url=links.cred_url,
        )
    return CredentialDraft(
        ids=ids,
        links=links,
        claims=claims,
        disclosable=disclosable,
        expires_at=expires_at,
        certificate=certificate,
    )
