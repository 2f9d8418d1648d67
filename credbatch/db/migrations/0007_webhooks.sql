-- Webhooks. Tenants register HTTPS endpoints; batch and record state changes become
-- events, written by triggers in the same transaction as the change (an outbox: an event
-- exists exactly when its change committed; batches_webhook_events, records_webhook_events),
-- with one delivery row per subscribed endpoint. Dispatchers (workers.webhooks) claim due
-- deliveries across tenants through webhook_deliveries_claim, which answers ids only;
-- everything else they read and write in the tenant's own transaction under row-level
-- security.

CREATE TABLE webhook_endpoints (
  tenant_id       uuid        NOT NULL REFERENCES tenants (id),
  id              uuid        NOT NULL,
  url             text        NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2000),
  event_types     text[]      NOT NULL
    CHECK (cardinality(event_types) >= 1 AND event_types <@ ARRAY[
      'batch.completed', 'batch.completed_with_errors', 'batch.cancelled', 'batch.failed',
      'record.failed', 'record.claimed', 'record.revoked']),
  description     text        NOT NULL DEFAULT '' CHECK (length(description) <= 500),
  disabled        boolean     NOT NULL DEFAULT false,
  disabled_reason text        NOT NULL DEFAULT '',
  failing_since   timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
COMMENT ON TABLE webhook_endpoints IS
  'A tenant''s webhook endpoints (webhookEndpoints/{id}): where events of the subscribed '
  'types are POSTed. A disabled endpoint gets no new deliveries.';
COMMENT ON COLUMN webhook_endpoints.disabled_reason IS
  'Why credbatch disabled the endpoint (410 Gone, failing for too long); empty otherwise.';
COMMENT ON COLUMN webhook_endpoints.failing_since IS
  'First failed attempt since the last success; NULL while deliveries succeed. An endpoint '
  'failing for long enough is disabled by the dispatcher.';
CREATE INDEX webhook_endpoints_created_idx
  ON webhook_endpoints (tenant_id, created_at DESC, id DESC);
-- The webhook triggers look up the tenant's enabled subscribers of an event type.
CREATE INDEX webhook_endpoints_enabled_idx ON webhook_endpoints (tenant_id) WHERE NOT disabled;
ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_endpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_endpoints_isolation ON webhook_endpoints
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, UPDATE, DELETE', 'TABLE webhook_endpoints');

CREATE TABLE webhook_secrets (
  tenant_id   uuid        NOT NULL,
  endpoint_id uuid        NOT NULL,
  id          uuid        NOT NULL,
  secret      text        NOT NULL CHECK (secret ~ '^whsec_[A-Za-z0-9+/]{32,}={0,2}$'),
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz,
  PRIMARY KEY (tenant_id, endpoint_id, id),
  FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id)
    ON DELETE CASCADE
);
COMMENT ON TABLE webhook_secrets IS
  'Signing secrets of an endpoint (Standard Webhooks whsec_<base64>). Every secret not yet '
  'expired signs each delivery: a rotation gives the old secret an expires_at 24 hours on '
  'and adds a new one without, so receivers can switch over without losing a delivery.';
ALTER TABLE webhook_secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_secrets FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_secrets_isolation ON webhook_secrets
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, UPDATE, DELETE', 'TABLE webhook_secrets');

CREATE TABLE webhook_events (
  tenant_id  uuid        NOT NULL REFERENCES tenants (id),
  id         text        NOT NULL CHECK (id ~ '^msg_[0-9a-f]{32}$'),
  type       text        NOT NULL,
  payload    jsonb       NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
COMMENT ON TABLE webhook_events IS
  'Events for webhook endpoints, written by the webhook triggers in the transaction of the '
  'change they report, and only for tenants with an enabled endpoint subscribed to the type. '
  'payload is the exact body sent ({"type", "timestamp", "data"}): resource names, counts and '
  'error codes, no personal data. id is the webhook-id of every delivery of the event.';
ALTER TABLE webhook_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_events FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_events_isolation ON webhook_events
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT', 'TABLE webhook_events');

CREATE TABLE webhook_deliveries (
  tenant_id        uuid        NOT NULL,
  id               uuid        NOT NULL,
  endpoint_id      uuid        NOT NULL,
  event_id         text        NOT NULL,
  state            text        NOT NULL DEFAULT 'PENDING'
    CHECK (state IN ('PENDING', 'SUCCEEDED', 'FAILED')),
  attempts         integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at  timestamptz NOT NULL DEFAULT now(),
  leased_until     timestamptz,
  last_status_code integer     NOT NULL DEFAULT 0,
  last_error       text        NOT NULL DEFAULT '',
  created_at       timestamptz NOT NULL DEFAULT now(),
  completed_at     timestamptz,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id)
    ON DELETE CASCADE,
  FOREIGN KEY (tenant_id, event_id) REFERENCES webhook_events (tenant_id, id),
  CHECK ((state = 'PENDING') = (completed_at IS NULL))
);
COMMENT ON TABLE webhook_deliveries IS
  'One event''s delivery to one endpoint (webhookEndpoints/{e}/deliveries/{id}). PENDING '
  'rows are due at next_attempt_at; a dispatcher that claims one leases it until '
  'leased_until (next_attempt_at moves there too), so a dispatcher that dies mid-delivery '
  'leaves it due again when the lease runs out: delivered at least once, never lost.';
COMMENT ON COLUMN webhook_deliveries.attempts IS
  'Attempts started (counted when claimed, so an attempt cut by a crash counts too).';
CREATE INDEX webhook_deliveries_endpoint_idx
  ON webhook_deliveries (tenant_id, endpoint_id, created_at DESC, id DESC);
-- The claim, across tenants (not led by tenant_id: dispatchers serve every tenant by due
-- time). Partial, so it holds only what is still to deliver.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
  WHERE state = 'PENDING';
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY webhook_deliveries_isolation ON webhook_deliveries
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, UPDATE', 'TABLE webhook_deliveries');

-- The owner runs the SECURITY DEFINER triggers and the claim across tenants; FORCE
-- ROW LEVEL SECURITY applies to it too, so it gets its own policies.
DO $$
BEGIN
  EXECUTE format('CREATE POLICY webhook_endpoints_owner ON webhook_endpoints TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
  EXECUTE format('CREATE POLICY webhook_events_owner ON webhook_events TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
  EXECUTE format('CREATE POLICY webhook_deliveries_owner ON webhook_deliveries TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
END
$$;
