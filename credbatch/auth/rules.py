"""Which roles may call which RPC. An RPC missing from this table is refused to everyone."""

from __future__ import annotations

from credbatch.auth.roles import ADMINS, READERS, UPLOADERS

_TEMPLATES = "/credbatch.templates.v1.TemplateService/"
_UPLOADS = "/credbatch.uploads.v1.UploadService/"
_BATCHES = "/credbatch.batches.v1.BatchStatusService/"
_WEBHOOKS = "/credbatch.webhooks.v1.WebhookService/"
_TENANTS = "/credbatch.tenants.v1.TenantService/"

RPC_ROLES: dict[str, frozenset[str]] = {
    **{
        _TEMPLATES + rpc: ADMINS
        for rpc in (
            "CreateCredentialSchema",
            "CreateCredentialSchemaVersion",
            "CreateEmailTemplate",
            "CreateSmsTemplate",
            "CreateCertificateTemplate",
        )
    },
    **{
        _TEMPLATES + rpc: READERS
        for rpc in (
            "GetCredentialSchema",
            "ListCredentialSchemas",
            "GetEmailTemplate",
            "ListEmailTemplates",
            "GetSmsTemplate",
            "ListSmsTemplates",
            "GetCertificateTemplate",
            "ListCertificateTemplates",
            "RenderTemplatePreview",
            "GetSampleCsv",
        )
    },
    _UPLOADS + "UploadBatch": UPLOADERS,
    **{
        _BATCHES + rpc: READERS
        for rpc in ("ListBatches", "GetBatch", "DownloadBatchReport", "ListRecords", "WatchBatch")
    },
    # An issuer may only retry, cancel, revoke or resend in batches it created: row-level security
    # hides the others from it, so they are NOT_FOUND to it. Observers may change nothing.
    _BATCHES + "RetryFailedRecords": UPLOADERS,
    _BATCHES + "CancelBatch": UPLOADERS,
    _BATCHES + "RevokeRecords": UPLOADERS,
    _BATCHES + "ResendInvitations": UPLOADERS,
    _BATCHES + "UpdateRecordContact": UPLOADERS,
    # Endpoints receive every batch of the tenant, and their secrets sign for it.
    **{
        _WEBHOOKS + rpc: ADMINS
        for rpc in (
            "CreateWebhookEndpoint",
            "GetWebhookEndpoint",
            "ListWebhookEndpoints",
            "UpdateWebhookEndpoint",
            "DeleteWebhookEndpoint",
            "RotateWebhookEndpointSecret",
            "ListWebhookDeliveries",
            "RedeliverWebhookEvent",
        )
    },
    # The profile is what every holder sees of the tenant: only its administrators change it.
    _TENANTS + "GetTenantProfile": READERS,
    _TENANTS + "UpdateTenantProfile": ADMINS,
}

# Infrastructure RPCs that every client (load balancers, grpcurl) may call without a token.
PUBLIC_PREFIXES: tuple[str, ...] = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


def is_public(method: str) -> bool:
    return method.startswith(PUBLIC_PREFIXES)


def allowed_roles(method: str) -> frozenset[str]:
    return RPC_ROLES.get(method, frozenset())
