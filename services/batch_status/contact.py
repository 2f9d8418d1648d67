"""UpdateRecordContact input rules and refusals, free of protos (mapping.py reads the message).

The new values are held to the upload's own rules (``compile_recipient_validator``): the same
normalisation (lower-case domain, E.164) and the same error codes, so a value the upload would
refuse is refused here with the field it came in.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from credbatch.batches.contact import ContactChange, NotCorrectable
from credbatch.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from credbatch.schema.model import Medium
from credbatch.schema.values import compile_recipient_validator

FIELDS = ("email", "phone")
_MEDIUM_OF = {"email": Medium.EMAIL, "phone": Medium.SMS}


@dataclass(frozen=True)
class ContactRequest:
    """What the caller asked, before the batch is read: the record and the masked values."""

    batch_id: uuid.UUID
    record_id: uuid.UUID
    values: dict[str, str]  # field -> raw value, for each field of the mask


def contact_request(
    batch_id: uuid.UUID, record_id: uuid.UUID, paths: Sequence[str], email: str, phone: str
) -> ContactRequest:
    """The request, or INVALID_ARGUMENT for an empty or unknown update_mask path."""
    violations: list[FieldViolation] = []
    if not paths:
        violations.append(
            FieldViolation("update_mask", "name at least one of email, phone", "REQUIRED")
        )
    for index, path in enumerate(paths):
        if path not in FIELDS:
            violations.append(
                FieldViolation(
                    f"update_mask.paths[{index}]",
                    f"{path!r} cannot be updated; only email and phone",
                    "INVALID_UPDATE_MASK",
                )
            )
    _raise(violations)
    raw = {"email": email, "phone": phone}
    return ContactRequest(batch_id, record_id, {path: raw[path] for path in dict.fromkeys(paths)})


def validated_change(
    request: ContactRequest, mediums: Collection[Medium], region: str
) -> ContactChange:
    """The normalised new values, or INVALID_ARGUMENT naming each field the upload would refuse.

    A field is only accepted for a medium the batch invites by: a batch without SMS has no
    phone to send to.
    """
    violations: list[FieldViolation] = []
    for field in request.values:
        if _MEDIUM_OF[field] not in mediums:
            violations.append(
                FieldViolation(
                    field,
                    f"the batch does not invite by {_MEDIUM_OF[field].value}",
                    "MEDIUM_NOT_USED",
                )
            )
    _raise(violations)
    validator = compile_recipient_validator(mediums, region)
    # Fields outside the mask are validated as empty cells would be, so their errors are
    # dropped below: only what the caller sent is judged.
    cells = [request.values.get(column.name, "") for column in validator.columns]
    result = validator.validate(cells)
    for error in result.errors:
        if error.column in request.values:
            violations.append(FieldViolation(error.column, error.message, error.code))
    _raise(violations)
    values = result.values
    return ContactChange(
        request.batch_id,
        request.record_id,
        email=str(values["email"]) if "email" in request.values else None,
        phone=str(values["phone"]) if "phone" in request.values else None,
    )


def record_not_found(batch_id: uuid.UUID, record_id: uuid.UUID) -> NotFound:
    # Another tenant's record, or one of a batch the caller cannot see, reads the same.
    return NotFound(
        f"no record {record_id} in batches/{batch_id}",
        reason="RECORD_NOT_FOUND",
        metadata={"resource": "record"},
    )


def not_correctable(record_id: uuid.UUID, refused: NotCorrectable) -> FailedPrecondition:
    why = {
        "CLAIMED": "its holder already took the credential (revoke it and upload again)",
        "REVOKED": "its credential is revoked",
        "CANCELLED": "it was cancelled",
    }.get(refused.state.value, "its first invitation is still on its way")
    return FailedPrecondition(
        f"record {record_id} is {refused.state.value}: {why}; "
        "only INVITED, EXPIRED or FAILED records are invited again",
        reason="RECORD_NOT_CORRECTABLE",
        metadata={"state": refused.state.value},
    )


def _raise(violations: list[FieldViolation]) -> None:
    if violations:
        raise InvalidArgument(
            "invalid UpdateRecordContact request: "
            + "; ".join(f"{v.field}: {v.description}" for v in violations),
            reason=violations[0].reason,
            violations=violations,
        )
