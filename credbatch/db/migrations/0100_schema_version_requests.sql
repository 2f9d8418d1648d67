-- 0100: request ids of schema versions (AIP-155 for CreateCredentialSchemaVersion).
--
-- idempotency_keys maps a request id to one resource id, but a schema version is identified
-- by (schema_id, version), so a retried CreateCredentialSchemaVersion finds the version it
-- created by this column instead. Unique per schema: the same id on another schema is
-- another request.
ALTER TABLE credential_schema_versions ADD COLUMN request_id text
  CHECK (request_id IS NULL OR length(request_id) BETWEEN 1 AND 200);
COMMENT ON COLUMN credential_schema_versions.request_id IS
  'request_id of the CreateCredentialSchemaVersion call that created this version, if any.';
CREATE UNIQUE INDEX credential_schema_versions_request_key
  ON credential_schema_versions (tenant_id, schema_id, request_id)
  WHERE request_id IS NOT NULL;
