"""Refusals of audited RPCs that no domain code saw, recorded at the edge.

The services record each change they make, and each refusal they decide, with the resource
it concerned (``credbatch.audit``). Some refusals happen before a service runs: the caller's
roles may not call the RPC (PERMISSION_DENIED from the role rules), or the request does not
parse (a malformed resource name, INVALID_ARGUMENT from the servicer's mapping). The edge
records those, with the resource left empty: it knows the method, not the request's meaning.
Calls of RPCs that change nothing (reads, lists, watches, previews) are not audited.
"""

from __future__ import annotations

import asyncpg

from credbatch import audit
from credbatch.audit import Action
from credbatch.errors import CredbatchError
from credbatch.tenancy import TenantScope

_TEMPLATES = "/credbatch.templates.v1.TemplateService/"
_UPLOADS = "/credbatch.uploads.v1.UploadService/"
_BATCHES = "/credbatch.batches.v1.BatchStatusService/"
_WEBHOOKS = "/credbatch.webhooks.v1.WebhookService/"

AUDITED_RPCS: dict[str, Action] = {
    _TEMPLATES + "CreateCredentialSchema": Action.SCHEMA_CREATE,
    _TEMPLATES + "CreateCredentialSchemaVersion": Action.SCHEMA_VERSION_CREATE,
    _TEMPLATES + "CreateEmailTemplate": Action.EMAIL_TEMPLATE_CREATE,
    _TEMPLATES + "CreateSmsTemplate": Action.SMS_TEMPLATE_CREATE,
    _TEMPLATES + "CreateCertificateTemplate": Action.CERTIFICATE_TEMPLATE_CREATE,
    _UPLOADS + "UploadBatch": Action.BATCH_UPLOAD,
    _BATCHES + "RetryFailedRecords": Action.BATCH_RETRY,
    _BATCHES + "CancelBatch": Action.BATCH_CANCEL,
    _BATCHES + "RevokeRecords": Action.RECORDS_REVOKE,
    _BATCHES + "ResendInvitations": Action.INVITATIONS_RESEND,
    _BATCHES + "UpdateRecordContact": Action.RECORD_CONTACT_UPDATE,
    _WEBHOOKS + "CreateWebhookEndpoint": Action.WEBHOOK_ENDPOINT_CREATE,
    _WEBHOOKS + "UpdateWebhookEndpoint": Action.WEBHOOK_ENDPOINT_UPDATE,
    _WEBHOOKS + "DeleteWebhookEndpoint": Action.WEBHOOK_ENDPOINT_DELETE,
    _WEBHOOKS + "RotateWebhookEndpointSecret": Action.WEBHOOK_SECRET_ROTATE,
    _WEBHOOKS + "RedeliverWebhookEvent": Action.WEBHOOK_EVENT_REDELIVER,
    "/credbatch.tenants.v1.TenantService/UpdateTenantProfile": Action.TENANT_PROFILE_UPDATE,
    "/credbatch.tenants.v1.TenantService/EraseHolder": Action.HOLDER_ERASE,
}


async def record_refusal(
    pool: asyncpg.Pool, method: str, caller: TenantScope, error: CredbatchError
) -> None:
    """Record ``error`` for an audited ``method`` unless it is recorded already or not a
    refusal the request earned (``audit.is_recorded_refusal``)."""
    action = AUDITED_RPCS.get(method)
    if action is None or error.audited or not audit.is_recorded_refusal(error):
        return
    await audit.record_failure(pool, caller, action, "", error)
    error.audited = True
