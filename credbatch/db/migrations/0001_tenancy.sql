-- Tenancy kernel: the tenants table and request ids.
--
-- Conventions for every migration (tests/db/test_rls_isolation.py and
-- tests/db/test_schema_files.py check them):
--   * migrations hold tables, types, indexes, constraints, row-level security policies,
--     grants on tables and data; stored functions live in credbatch/db/functions and
--     triggers in credbatch/db/triggers, one file each (see credbatch/db/migrate.py);
--   * every tenant-owned table has `tenant_id uuid not null` leading its primary key and
--     its indexes, ENABLE + FORCE ROW LEVEL SECURITY and a policy on app_tenant();
--   * the application role gets only the privileges it needs, through grant_app() (the
--     role name is set by the migration runner from credbatch.config.APP_ROLE);
--   * every table carries a COMMENT.

-- Nobody but the owner creates objects in public (already the default since PostgreSQL 15).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

CREATE TABLE tenants (
  id         uuid        PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE tenants IS
  'Issuer organisations. Provisioned on first use by tenant_transaction; every '
  'tenant-owned table refers to it (directly or through its parent row).';
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenants_isolation ON tenants
  USING (id = app_tenant()) WITH CHECK (id = app_tenant());
SELECT grant_app('SELECT, INSERT', 'TABLE tenants');

CREATE TABLE idempotency_keys (
  tenant_id   uuid        NOT NULL REFERENCES tenants (id),
  kind        text        NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
  request_id  text        NOT NULL CHECK (length(request_id) BETWEEN 1 AND 200),
  resource_id uuid        NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, kind, request_id)
);
COMMENT ON TABLE idempotency_keys IS
  'AIP-155 request ids of creates and uploads: (kind, request_id) -> the resource created. '
  'Insert it in the same transaction as the resource; a conflict means "return the existing '
  'resource". kind names the resource type, e.g. batch, credential_schema, email_template.';
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (tenant_id, created_at);
ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY idempotency_keys_isolation ON idempotency_keys
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, DELETE', 'TABLE idempotency_keys');
