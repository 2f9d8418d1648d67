-- 0001: tenancy kernel: the session settings RLS reads, the tenants table, request ids.
--
-- Conventions for every migration (they are what tests/db/test_rls_isolation.py checks):
--   * every tenant-owned table has `tenant_id uuid not null` leading its primary key and
--     its indexes, ENABLE + FORCE ROW LEVEL SECURITY and a policy on app_tenant();
--   * the application role gets only the privileges it needs, through grant_app() (the
--     role name is set by the migration runner from credbatch.config.APP_ROLE);
--   * every table carries a COMMENT.

-- Nobody but the owner creates objects in public (already the default since PostgreSQL 15).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- Grants privileges to the application role. Called by migrations only; the runner sets
-- credbatch.app_role for its session, and the call fails loudly when it is missing.
CREATE FUNCTION grant_app(p_privileges text, p_object text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  EXECUTE format('GRANT %s ON %s TO %I', p_privileges, p_object,
                 current_setting('credbatch.app_role'));
END
$$;
REVOKE ALL ON FUNCTION grant_app(text, text) FROM PUBLIC;
COMMENT ON FUNCTION grant_app(text, text) IS
  'Migration helper: GRANT p_privileges ON p_object TO the application role named by the '
  'session setting credbatch.app_role (set by credbatch.db.migrate).';

-- The acting tenant, user, roles and departments. credbatch.tenancy.tenant_transaction sets
-- them with set_config(..., true) (transaction-local). After such a transaction ends the
-- setting still exists in the session but reads '' - hence nullif everywhere.
-- Plain SQL and STABLE so the planner inlines them and uses them as index conditions.
CREATE FUNCTION app_tenant() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(pg_catalog.current_setting('app.tenant_id', true), '')::uuid $$;
COMMENT ON FUNCTION app_tenant() IS
  'Tenant of the current transaction (app.tenant_id) or NULL when none is set.';

CREATE FUNCTION app_user() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(pg_catalog.current_setting('app.user_id', true), '') $$;
COMMENT ON FUNCTION app_user() IS
  'Acting user or service id (token sub, app.user_id) or NULL when none is set.';

CREATE FUNCTION app_roles() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT coalesce(nullif(pg_catalog.current_setting('app.roles', true), '')::text[],
                  '{}'::text[])
$$;
COMMENT ON FUNCTION app_roles() IS
  'Roles of the acting user (app.roles, a text-formatted array); empty when none is set.';

CREATE FUNCTION app_departments() RETURNS text[]
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT coalesce(nullif(pg_catalog.current_setting('app.departments', true), '')::text[],
                  '{}'::text[])
$$;
COMMENT ON FUNCTION app_departments() IS
  'Departments of the acting user (app.departments, a text-formatted array); empty when '
  'none is set.';

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
