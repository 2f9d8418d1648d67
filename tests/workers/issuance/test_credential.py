"""Building a credential's claims and certificate inputs: pure, no database or broker."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime
from typing import Any

from credbatch.schema.model import Attribute, AttributeType, Medium, SchemaVersion
from credbatch.signing import opaque
from credbatch.signing.status_list import StatusEntry
from credbatch.templating.certificate import CompiledCertificate
from workers.issuance.context import BatchContext
from workers.issuance.credential import (
    CredentialDraft,
    Holder,
    Identifiers,
    draft_credential,
    holder_values,
    links_for,
    new_identifiers,
)

PUBLIC = "https://issuer.example"
TENANT = uuid.UUID("00000000-0000-4000-8000-000000000001")
BATCH = uuid.UUID("00000000-0000-4000-8000-000000000002")
LIST = uuid.UUID("00000000-0000-4000-8000-000000000003")
RECORD = uuid.UUID("00000000-0000-4000-8000-000000000004")
ISSUED_AT = 1_700_000_000


def context(*, certificate: bool, validity_seconds: int | None = 86_400) -> BatchContext:
    schema = SchemaVersion(
        schema_id=uuid.UUID("00000000-0000-4000-8000-000000000005"),
        version=1,
        display_name="Course",
        attributes=(
            Attribute("full_name", AttributeType.STRING, required=True),
            Attribute("score", AttributeType.INTEGER, required=True),
            Attribute("born", AttributeType.DATE),
        ),
        requires_certificate=certificate,
    )
    return BatchContext(
        tenant_id=TENANT,
        batch_id=BATCH,
        schema=schema,
        mediums=frozenset({Medium.EMAIL}),
        validity_seconds=validity_seconds,
        issuer=f"{PUBLIC}/tenants/{TENANT}",
        vct=f"{PUBLIC}/tenants/{TENANT}/schemas/s/v1",
        email=None,
        sms=None,
        certificate=(
            CompiledCertificate("Certificate", "{{ full_name }} scored {{ score }}.")
            if certificate
            else None
        ),
    )


def holder(attributes: dict[str, Any]) -> Holder:
    return Holder(RECORD, email="ann@example.test", phone=None, attributes=attributes)


def draft(
    batch: BatchContext, attributes: dict[str, Any], certificate_id: str | None
) -> CredentialDraft:
    return draft_credential(
        batch,
        holder(attributes),
        ids=Identifiers(claim_token="claim-1", certificate_id=certificate_id),
        status=StatusEntry(list_id=LIST, index=42),
        issued_at=ISSUED_AT,
        public_url=PUBLIC,
    )


def test_claims_carry_issuer_type_times_and_status_entry() -> None:
    built = draft(context(certificate=False), {"full_name": "Ann", "score": 90}, None)
    assert built.claims == {
        "iss": f"{PUBLIC}/tenants/{TENANT}",
        "vct": f"{PUBLIC}/tenants/{TENANT}/schemas/s/v1",
        "iat": ISSUED_AT,
        "exp": ISSUED_AT + 86_400,
        "status": {
            "status_list": {"idx": 42, "uri": f"{PUBLIC}/tenants/{TENANT}/statuslists/{LIST}"}
        },
    }
    assert built.expires_at == datetime.fromtimestamp(ISSUED_AT + 86_400, UTC)
    assert built.links.claim_url == f"{PUBLIC}/claim/claim-1"
    assert built.links.cred_url is None
    assert built.certificate is None


def test_without_validity_there_is_no_expiry() -> None:
    built = draft(context(certificate=False, validity_seconds=None), {"full_name": "Ann"}, None)
    assert "exp" not in built.claims
    assert built.expires_at is None


def test_schema_attributes_with_values_are_disclosable_and_nothing_else() -> None:
    built = draft(
        context(certificate=False),
        {"full_name": "Ann", "score": 90, "born": None, "not_in_schema": "x"},
        None,
    )
    assert built.disclosable == {"full_name": "Ann", "score": 90}
    assert not set(built.disclosable) & set(built.claims)


def test_a_certificate_makes_cred_url_disclosable_and_carries_its_inputs() -> None:
    batch = context(certificate=True)
    built = draft(batch, {"full_name": "Ann", "score": 90}, "cert-1")
    cred_url = f"{PUBLIC}/c/cert-1"
    # The link leads to a PDF of every attribute: the holder discloses it, or not.
    assert built.disclosable == {"full_name": "Ann", "score": 90, "Cred_URL": cred_url}
    assert "Cred_URL" not in built.claims
    assert built.links.cred_url == cred_url
    assert built.certificate is not None
    assert built.certificate.template is batch.certificate
    assert built.certificate.cred_url == cred_url
    assert built.certificate.values["full_name"] == "Ann"
    assert built.certificate.values["score"] == "90"
    assert built.certificate.values["Cred_URL"] == cred_url
    assert built.certificate.values["claim_url"] == f"{PUBLIC}/claim/claim-1"
    # The day of issue, not of the run: 1_700_000_000 is 2023-11-14T22:13:20Z.
    assert built.certificate.values["issue_date"] == "2023-11-14"


def test_same_inputs_build_the_same_draft() -> None:
    batch = context(certificate=True)
    attributes = {"full_name": "Ann", "score": 90}
    assert draft(batch, attributes, "cert-1") == draft(batch, attributes, "cert-1")


def test_new_identifiers_carry_the_tenant_and_a_certificate_id_only_when_needed() -> None:
    with_certificate = new_identifiers(TENANT, context(certificate=True))
    assert opaque.tenant_of(with_certificate.claim_token) == TENANT
    assert with_certificate.certificate_id is not None
    assert opaque.tenant_of(with_certificate.certificate_id) == TENANT
    assert new_identifiers(TENANT, context(certificate=False)).certificate_id is None
    assert new_identifiers(TENANT, context(certificate=False)) != new_identifiers(
        TENANT, context(certificate=False)
    )


def test_holder_values_fill_the_system_placeholders_as_text() -> None:
    values = holder_values(
        context(certificate=False),
        holder({"full_name": "Ann", "score": 90}),
        links_for(PUBLIC, "claim-1", None),
        date(2024, 2, 29),
    )
    assert values["holder_email"] == "ann@example.test"
    assert values["holder_phone"] == ""
    assert values["claim_url"] == f"{PUBLIC}/claim/claim-1"
    assert values["issuer_name"] == "Course"
    assert values["issue_date"] == "2024-02-29"
    assert values["born"] == ""
    assert "Cred_URL" not in values


def test_the_type_metadata_digest_is_carried_when_the_context_has_one() -> None:
    batch = dataclasses.replace(context(certificate=False), vct_integrity="sha256-" + "A" * 44)
    built = draft(batch, {"full_name": "Ann", "score": 90}, None)
    assert built.claims["vct#integrity"] == "sha256-" + "A" * 44
    assert "vct#integrity" not in built.disclosable
