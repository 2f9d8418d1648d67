"""Proto <-> domain conversion for EraseHolder."""

from __future__ import annotations

from credbatch.errors import FieldViolation, InvalidArgument
from credbatch.gen.tenants.v1 import tenants_service_pb2
from services.tenants.erasure import Credentials, Erased, Holder

_CREDENTIALS = {
    tenants_service_pb2.CREDENTIAL_DISPOSITION_REVOKE: Credentials.REVOKE,
    tenants_service_pb2.CREDENTIAL_DISPOSITION_KEEP_VALID: Credentials.KEEP_VALID,
}


def erase_request(
    request: tenants_service_pb2.EraseHolderRequest,
) -> tuple[Holder, Credentials, str]:
    """The holder, what to do with their credentials and the revoke reason.

    Raises:
        InvalidArgument: ``credentials`` is not chosen.
    """
    credentials = _CREDENTIALS.get(request.credentials)
    if credentials is None:
        description = "choose CREDENTIAL_DISPOSITION_REVOKE or CREDENTIAL_DISPOSITION_KEEP_VALID"
        raise InvalidArgument(
            f"invalid credentials: {description}",
            violations=[FieldViolation("credentials", description, "REQUIRED")],
        )
    return Holder(email=request.email, phone=request.phone), credentials, request.reason


def erased_to_proto(erased: Erased) -> tenants_service_pb2.EraseHolderResponse:
    return tenants_service_pb2.EraseHolderResponse(
        records_erased=erased.records_erased,
        credentials_revoked=erased.credentials_revoked,
        records_cancelled=erased.records_cancelled,
        batches=erased.batches,
    )
