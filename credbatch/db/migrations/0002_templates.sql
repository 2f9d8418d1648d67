-- Credential schemas (immutable versions) and email / SMS / certificate templates.

CREATE TABLE credential_schemas (
  tenant_id      uuid        NOT NULL REFERENCES tenants (id),
  id             uuid        NOT NULL,
  display_name   text        NOT NULL CHECK (length(btrim(display_name)) > 0),
  latest_version integer     NOT NULL DEFAULT 1 CHECK (latest_version >= 1),
  created_by     text        NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
COMMENT ON TABLE credential_schemas IS
  'Credential schemas (resource schemas/{id}). The row is the identity; its content lives in '
  'credential_schema_versions. latest_version is the newest version; a change of content is '
  'a new version, never an update of an existing one.';
CREATE UNIQUE INDEX credential_schemas_name_key
  ON credential_schemas (tenant_id, lower(display_name));
CREATE INDEX credential_schemas_created_idx
  ON credential_schemas (tenant_id, created_at DESC, id DESC);
ALTER TABLE credential_schemas ENABLE ROW LEVEL SECURITY;
ALTER TABLE credential_schemas FORCE ROW LEVEL SECURITY;
CREATE POLICY credential_schemas_isolation ON credential_schemas
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, UPDATE', 'TABLE credential_schemas');

CREATE TABLE credential_schema_versions (
  tenant_id            uuid        NOT NULL,
  schema_id            uuid        NOT NULL,
  version              integer     NOT NULL CHECK (version >= 1),
  attributes           jsonb       NOT NULL CHECK (jsonb_typeof(attributes) = 'array'),
  requires_certificate boolean     NOT NULL DEFAULT false,
  validity_seconds     bigint      CHECK (validity_seconds > 0),
  description          text        NOT NULL DEFAULT '',
  created_by           text        NOT NULL,
  created_at           timestamptz NOT NULL DEFAULT now(),
  request_id           text
    CHECK (request_id IS NULL OR length(request_id) BETWEEN 1 AND 200),
  PRIMARY KEY (tenant_id, schema_id, version),
  FOREIGN KEY (tenant_id, schema_id) REFERENCES credential_schemas (tenant_id, id)
);
COMMENT ON TABLE credential_schema_versions IS
  'Immutable versions of a credential schema: the application role may only insert and '
  'read them. attributes is a JSON array of {name, type, required, description, '
  'enum_values}, in CSV column order.';
COMMENT ON COLUMN credential_schema_versions.validity_seconds IS
  'Lifetime of credentials issued under this version (exp = iat + validity); NULL = no exp.';
COMMENT ON COLUMN credential_schema_versions.request_id IS
  'request_id of the CreateCredentialSchemaVersion call that created this version, if any.';
-- AIP-155 for CreateCredentialSchemaVersion. idempotency_keys maps a request id to one
-- resource id, but a schema version is identified by (schema_id, version), so a retried call
-- finds the version it created by this column instead. Unique per schema: the same id on
-- another schema is another request.
CREATE UNIQUE INDEX credential_schema_versions_request_key
  ON credential_schema_versions (tenant_id, schema_id, request_id)
  WHERE request_id IS NOT NULL;
ALTER TABLE credential_schema_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE credential_schema_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY credential_schema_versions_isolation ON credential_schema_versions
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT', 'TABLE credential_schema_versions');

CREATE TABLE email_templates (
  tenant_id    uuid        NOT NULL REFERENCES tenants (id),
  id           uuid        NOT NULL,
  display_name text        NOT NULL,
  subject      text        NOT NULL,
  html_body    text        NOT NULL,
  text_body    text        NOT NULL,
  is_default   boolean     NOT NULL DEFAULT false,
  created_by   text        NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
COMMENT ON TABLE email_templates IS
  'Email invitation templates (emailTemplates/{id}); Jinja2 sources rendered sandboxed. At '
  'most one default per tenant, used when an EMAIL upload names no template.';
CREATE UNIQUE INDEX email_templates_one_default
  ON email_templates (tenant_id) WHERE is_default;
CREATE INDEX email_templates_created_idx
  ON email_templates (tenant_id, created_at DESC, id DESC);
ALTER TABLE email_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE email_templates FORCE ROW LEVEL SECURITY;
CREATE POLICY email_templates_isolation ON email_templates
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, UPDATE', 'TABLE email_templates');

CREATE TABLE sms_templates (
  tenant_id    uuid        NOT NULL REFERENCES tenants (id),
  id           uuid        NOT NULL,
  display_name text        NOT NULL,
  body         text        NOT NULL,
  is_default   boolean     NOT NULL DEFAULT false,
  created_by   text        NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
COMMENT ON TABLE sms_templates IS
  'SMS invitation templates (smsTemplates/{id}). At most one default per tenant, used when '
  'an SMS upload names no template.';
CREATE UNIQUE INDEX sms_templates_one_default
  ON sms_templates (tenant_id) WHERE is_default;
CREATE INDEX sms_templates_created_idx
  ON sms_templates (tenant_id, created_at DESC, id DESC);
ALTER TABLE sms_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE sms_templates FORCE ROW LEVEL SECURITY;
CREATE POLICY sms_templates_isolation ON sms_templates
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, UPDATE', 'TABLE sms_templates');

CREATE TABLE certificate_templates (
  tenant_id      uuid        NOT NULL REFERENCES tenants (id),
  id             uuid        NOT NULL,
  display_name   text        NOT NULL,
  title          text        NOT NULL,
  body           text        NOT NULL,
  layout         jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(layout) = 'object'),
  logo           bytea,
  logo_mime_type text,
  created_by     text        NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  CHECK ((logo IS NULL) = (logo_mime_type IS NULL))
);
COMMENT ON TABLE certificate_templates IS
  'Certificate (PDF) templates (certificateTemplates/{id}): title and body text with '
  'placeholders, layout options (colours, logo placement, ...) as a JSON object, and an '
  'optional logo image with its MIME type.';
CREATE INDEX certificate_templates_created_idx
  ON certificate_templates (tenant_id, created_at DESC, id DESC);
ALTER TABLE certificate_templates ENABLE ROW LEVEL SECURITY;
ALTER TABLE certificate_templates FORCE ROW LEVEL SECURITY;
CREATE POLICY certificate_templates_isolation ON certificate_templates
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, UPDATE', 'TABLE certificate_templates');
