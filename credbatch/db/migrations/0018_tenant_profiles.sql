-- Tenant profiles: the issuer's own face (name, logo, colours, support contact, locale) shown
-- wherever a holder or a wallet meets it (claim page, messages, certificate, issuer and type
-- metadata), and the tenant's defaults for retention and reminders. One row per tenant, made
-- by the first UpdateTenantProfile; a tenant without one shows the platform's defaults.

CREATE TABLE tenant_profiles (
  tenant_id         uuid        NOT NULL REFERENCES tenants (id),
  display_name      text        NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
  display_names     jsonb       NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(display_names) = 'object'),
  logo              bytea       CHECK (octet_length(logo) <= 262144),
  logo_media_type   text        CHECK (logo_media_type IN ('image/png', 'image/svg+xml')),
  logo_sha256       bytea       GENERATED ALWAYS AS (sha256(logo)) STORED,
  primary_color     text        NOT NULL DEFAULT '' CHECK (primary_color ~ '^(#[0-9a-f]{6})?$'),
  background_color  text        NOT NULL DEFAULT ''
    CHECK (background_color ~ '^(#[0-9a-f]{6})?$'),
  support_email     text        NOT NULL DEFAULT '' CHECK (length(support_email) <= 254),
  support_url       text        NOT NULL DEFAULT ''
    CHECK (support_url ~ '^(https?://.+)?$' AND length(support_url) <= 2000),
  default_locale    text        NOT NULL DEFAULT '' CHECK (length(default_locale) <= 35),
  email_sender_name text        NOT NULL DEFAULT '' CHECK (length(email_sender_name) <= 100),
  reply_to          text        NOT NULL DEFAULT '' CHECK (length(reply_to) <= 254),
  sms_sender_id     text        NOT NULL DEFAULT '' CHECK (sms_sender_id ~ '^[A-Za-z0-9 ]{0,11}$'),
  retention_days    integer     CHECK (retention_days BETWEEN 1 AND 3650),
  reminder_days     integer[]   CHECK (cardinality(reminder_days) BETWEEN 1 AND 5
                                       AND 1 <= ALL (reminder_days) AND 90 >= ALL (reminder_days)),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id),
  CHECK ((logo IS NULL) = (logo_media_type IS NULL))
);
COMMENT ON TABLE tenant_profiles IS
  'A tenant''s profile (UpdateTenantProfile): how holders and wallets see the issuer, and its '
  'defaults. Empty text means "not set"; the services then show the platform''s default.';
COMMENT ON COLUMN tenant_profiles.display_names IS
  'The display name per BCP 47 locale ({"de": "...", "fr-CH": "..."}), besides display_name '
  '(the name in default_locale).';
COMMENT ON COLUMN tenant_profiles.logo IS
  'PNG or sanitised SVG, served by the public endpoints under a URL holding logo_sha256, so '
  'pages and wallets never hot-link a third party and every version is cacheable for ever.';
COMMENT ON COLUMN tenant_profiles.retention_days IS
  'Days personal data of finished records is kept; NULL = CREDBATCH_RETENTION_DAYS.';
COMMENT ON COLUMN tenant_profiles.reminder_days IS
  'Default reminder days for batches that give none (ascending days after the invitation); '
  'NULL = no reminders.';
ALTER TABLE tenant_profiles ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_profiles FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_profiles_isolation ON tenant_profiles
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, UPDATE', 'TABLE tenant_profiles');
