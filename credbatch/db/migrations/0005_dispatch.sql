-- Fair dispatch at the outbox relay: per-tenant limits set by operators and the scheduler's
-- state. The relay claims PENDING records by virtual time, round robin across tenants and,
-- within a tenant, across its batches (functions/outbox_claim.sql says how). The state is
-- kept per active key only (a tenant or a batch with records to dispatch), so a claim reads
-- these small tables, never the backlog: its cost grows with the number of active batches,
-- not with the number of PENDING records.
--
-- The scheduler tables are the owner's alone (no RLS, no grant): the application role
-- reaches them only through SECURITY DEFINER functions and triggers. Rows exist only for
-- keys with work to dispatch.

CREATE TABLE tenant_limits (
  tenant_id          uuid             PRIMARY KEY REFERENCES tenants (id),
  emails_per_second  double precision CHECK (emails_per_second > 0),
  sms_per_second     double precision CHECK (sms_per_second > 0),
  max_open_records   bigint           CHECK (max_open_records >= 0),
  dispatch_weight    double precision NOT NULL DEFAULT 1 CHECK (dispatch_weight > 0),
  updated_at         timestamptz      NOT NULL DEFAULT now()
);
COMMENT ON TABLE tenant_limits IS
  'Per-tenant sending limits, set by operators (as the owner). NULL in a column = unlimited; '
  'a tenant without a row gets the configured defaults (CREDBATCH_DEFAULT_*). Readable by the '
  'tenant (RLS); the relay and the upload quota read it through SECURITY DEFINER functions.';
COMMENT ON COLUMN tenant_limits.emails_per_second IS
  'Records with the EMAIL medium the relay dispatches per second (token bucket).';
COMMENT ON COLUMN tenant_limits.sms_per_second IS
  'Records with the SMS medium the relay dispatches per second (token bucket).';
COMMENT ON COLUMN tenant_limits.max_open_records IS
  'Most records waiting for dispatch or in flight (PENDING + QUEUED); an upload that would '
  'exceed it is refused.';
COMMENT ON COLUMN tenant_limits.dispatch_weight IS
  'Share of the relay against other busy tenants (2 = twice the records of a weight-1 tenant).';
ALTER TABLE tenant_limits ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_limits FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_limits_select ON tenant_limits FOR SELECT
  USING (tenant_id = app_tenant());
SELECT grant_app('SELECT', 'TABLE tenant_limits');
DO $$
BEGIN
  EXECUTE format('CREATE POLICY tenant_limits_owner ON tenant_limits TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
END
$$;

CREATE TABLE dispatch_clock (
  id           boolean          PRIMARY KEY DEFAULT true CHECK (id),
  tenant_clock double precision NOT NULL DEFAULT 0
);
COMMENT ON TABLE dispatch_clock IS
  'Fair dispatch: the tenant level''s clock (one row), the least virtual time of the tenants '
  'served lately; a tenant that becomes active starts there.';
INSERT INTO dispatch_clock DEFAULT VALUES;

-- Kept by the triggers that make records PENDING (dispatch_note_pending) and by the claim,
-- which drops a key once its batch has nothing PENDING left or is CANCELLED.
CREATE TABLE dispatch_tenants (
  tenant_id             uuid             PRIMARY KEY,
  vtime                 double precision,
  batch_clock           double precision NOT NULL DEFAULT 0,
  email_tokens          double precision,
  sms_tokens            double precision,
  tokens_at             timestamptz,
  email_throttled_until timestamptz,
  sms_throttled_until   timestamptz
);
COMMENT ON TABLE dispatch_tenants IS
  'Fair dispatch: one row per tenant with batches to dispatch. vtime NULL = newly active '
  '(starts at dispatch_clock); batch_clock is the same clock for the tenant''s batches; the '
  'token buckets of its sending rates as of tokens_at (NULL = full).';
-- A provider's throttle lives on the tenant's key, so it lasts while the tenant has work to
-- dispatch: a tenant with nothing PENDING has nothing to hold back, and a key made again by
-- a later upload starts unthrottled (its first jobs find out).
COMMENT ON COLUMN dispatch_tenants.email_throttled_until IS
  'The SMTP relay throttled this tenant''s sends: no batch with the EMAIL medium is '
  'dispatched before this time (dispatch_throttle).';
COMMENT ON COLUMN dispatch_tenants.sms_throttled_until IS
  'The SMS provider throttled this tenant''s sends (429): no batch with the SMS medium is '
  'dispatched before this time (dispatch_throttle).';
CREATE INDEX dispatch_tenants_vtime_idx ON dispatch_tenants (vtime NULLS FIRST);

CREATE TABLE dispatch_batches (
  tenant_id uuid             NOT NULL,
  batch_id  uuid             NOT NULL,
  vtime     double precision,
  pending   bigint           NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, batch_id)
);
COMMENT ON TABLE dispatch_batches IS
  'Fair dispatch: one row per batch with PENDING records. vtime NULL = newly active (starts '
  'at the tenant''s batch_clock). pending counts its PENDING records as the triggers and the '
  'relay saw them: exact unless a record left PENDING another way (cancel, a duplicate job), '
  'and set again from the records whenever the claim finds the batch short.';
CREATE INDEX dispatch_batches_vtime_idx ON dispatch_batches (tenant_id, vtime NULLS FIRST);

-- The claim's in-flight caps count records in state QUEUED, from here rather than from
-- records. Every record passes through QUEUED, so a partial index of QUEUED records collects
-- an entry per record ever dispatched; an entry is only skipped cheaply once a scan may mark
-- it dead, which no scan may do while any transaction of the cluster that began before the
-- record left QUEUED is open, and only VACUUM removes it, which on a table of millions of
-- records runs after hundreds of thousands of changes (bench/RESULTS.md has the figures).
-- This table holds only the records in flight, so vacuum, which scales with a table's size,
-- keeps it small.
CREATE TABLE dispatch_in_flight (
  tenant_id uuid NOT NULL,
  record_id uuid NOT NULL,
  batch_id  uuid NOT NULL,
  PRIMARY KEY (tenant_id, record_id)
);
COMMENT ON TABLE dispatch_in_flight IS
  'Fair dispatch: one row per record in state QUEUED (published, not finished), kept by the '
  'records_in_flight_* triggers; the claim counts its caps here. Owner only.';
