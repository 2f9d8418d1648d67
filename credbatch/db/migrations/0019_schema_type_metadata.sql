-- SD-JWT VC Type Metadata of each schema version, as its `vct` URL serves it. Written once, by
-- the first issuance of the version (with the tenant's profile of that moment: name, logo,
-- colours per locale), and never changed: credentials carry `vct#integrity`, the digest of
-- exactly these bytes, so a changed document would make every credential already issued
-- fail its check. No UPDATE or DELETE is granted to anyone; a new look is a new version.

CREATE TABLE schema_type_metadata (
  tenant_id  uuid        NOT NULL,
  schema_id  uuid        NOT NULL,
  version    integer     NOT NULL,
  document   bytea       NOT NULL CHECK (octet_length(document) BETWEEN 2 AND 1048576),
  integrity  text        NOT NULL CHECK (integrity ~ '^sha256-[A-Za-z0-9+/]{43}=$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, schema_id, version),
  FOREIGN KEY (tenant_id, schema_id, version)
    REFERENCES credential_schema_versions (tenant_id, schema_id, version)
);
COMMENT ON TABLE schema_type_metadata IS
  'The SD-JWT VC Type Metadata document (UTF-8 JSON, the exact bytes served) of a schema '
  'version, and its integrity (SRI sha256-<base64>), which credentials carry as vct#integrity. '
  'Immutable: insert-only.';
ALTER TABLE schema_type_metadata ENABLE ROW LEVEL SECURITY;
ALTER TABLE schema_type_metadata FORCE ROW LEVEL SECURITY;
CREATE POLICY schema_type_metadata_isolation ON schema_type_metadata
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT', 'TABLE schema_type_metadata');
