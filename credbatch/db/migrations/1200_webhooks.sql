-- 1200: webhooks. Tenants register HTTPS endpoints; batch and record state changes become
-- events, written by triggers in the same transaction as the change (an outbox: an event
-- exists exactly when its change committed), with one delivery row per subscribed endpoint.
-- Dispatchers (workers.webhooks) claim due deliveries across tenants through
-- webhook_deliveries_claim, which answers ids only; everything else they read and write in
-- the tenant's own transaction under row-level security.

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
-- The triggers below look up the tenant's enabled subscribers of an event type.
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
  'Events for webhook endpoints, written by the triggers below in the transaction of the '
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

-- The owner runs the SECURITY DEFINER triggers and the claim below, across tenants; FORCE
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

-- Writes the events of one statement's changes: p_events holds (tenant_id, type, data); an
-- event is kept only when its tenant has an enabled endpoint subscribed to its type, and
-- gets one delivery per such endpoint.
CREATE FUNCTION webhook_emit(p_tenants uuid[], p_types text[], p_data jsonb[]) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  WITH raised AS (
    SELECT u.tenant_id, u.type, u.data,
           'msg_' || replace(gen_random_uuid()::text, '-', '') AS id
    FROM unnest(p_tenants, p_types, p_data) AS u(tenant_id, type, data)
    WHERE EXISTS (
      SELECT 1 FROM public.webhook_endpoints e
      WHERE e.tenant_id = u.tenant_id AND NOT e.disabled AND u.type = ANY (e.event_types))
  ), events AS (
    INSERT INTO public.webhook_events (tenant_id, id, type, payload)
    SELECT tenant_id, id, type,
           jsonb_build_object(
             'type', type,
             'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             'data', data)
    FROM raised
    RETURNING tenant_id, id, type
  )
  INSERT INTO public.webhook_deliveries (tenant_id, id, endpoint_id, event_id)
  SELECT ev.tenant_id, gen_random_uuid(), e.id, ev.id
  FROM events ev
  JOIN public.webhook_endpoints e
    ON e.tenant_id = ev.tenant_id AND NOT e.disabled AND ev.type = ANY (e.event_types)
$$;
COMMENT ON FUNCTION webhook_emit(uuid[], text[], jsonb[]) IS
  'Triggers: records events (tenant, type, data) with a delivery per enabled subscribed '
  'endpoint; events no endpoint of their tenant subscribes to are dropped.';
REVOKE ALL ON FUNCTION webhook_emit(uuid[], text[], jsonb[]) FROM PUBLIC;

CREATE FUNCTION webhook_batch_events() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  v_tenants uuid[];
  v_types   text[];
  v_data    jsonb[];
BEGIN
  -- Tenants without webhooks pay one index probe per statement.
  IF NOT EXISTS (SELECT 1 FROM public.webhook_endpoints WHERE NOT disabled) THEN
    RETURN NULL;
  END IF;
  SELECT array_agg(n.tenant_id),
         array_agg('batch.' || lower(n.state)),
         array_agg(jsonb_build_object(
           'batch', 'batches/' || n.id,
           'state', n.state,
           'total_records', n.total_records,
           'record_counts', coalesce((
             SELECT jsonb_object_agg(lower(c.state), c.n)
             FROM (SELECT r.state, count(*) AS n FROM public.records r
                   WHERE r.tenant_id = n.tenant_id AND r.batch_id = n.id
                   GROUP BY r.state) c), '{}'::jsonb)))
  INTO v_tenants, v_types, v_data
  FROM new_rows n JOIN old_rows o ON o.tenant_id = n.tenant_id AND o.id = n.id
  WHERE n.state IN ('COMPLETED', 'COMPLETED_WITH_ERRORS', 'CANCELLED', 'FAILED')
    AND n.state IS DISTINCT FROM o.state
    AND EXISTS (SELECT 1 FROM public.webhook_endpoints e
                WHERE e.tenant_id = n.tenant_id AND NOT e.disabled
                  AND 'batch.' || lower(n.state) = ANY (e.event_types));
  IF v_tenants IS NOT NULL THEN
    PERFORM public.webhook_emit(v_tenants, v_types, v_data);
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION webhook_batch_events() IS
  'Trigger (AFTER UPDATE ON batches FOR EACH STATEMENT): a batch entering COMPLETED, '
  'COMPLETED_WITH_ERRORS, CANCELLED or FAILED raises batch.<state> with its record counts.';
REVOKE ALL ON FUNCTION webhook_batch_events() FROM PUBLIC;
CREATE TRIGGER batches_webhook_events
  AFTER UPDATE ON batches REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_batch_events();

CREATE FUNCTION webhook_record_events() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  v_tenants uuid[];
  v_types   text[];
  v_data    jsonb[];
BEGIN
  IF NOT EXISTS (SELECT 1 FROM public.webhook_endpoints
                 WHERE NOT disabled
                   AND event_types && ARRAY['record.failed', 'record.claimed', 'record.revoked'])
  THEN
    RETURN NULL;
  END IF;
  -- The error code, never error_message: messages may quote the row's data.
  SELECT array_agg(n.tenant_id),
         array_agg('record.' || lower(n.state)),
         array_agg(jsonb_strip_nulls(jsonb_build_object(
           'batch', 'batches/' || n.batch_id,
           'record', n.id::text,
           'row_number', n.row_number,
           'error_code', CASE WHEN n.state = 'FAILED' THEN n.error_code END)))
  INTO v_tenants, v_types, v_data
  FROM new_rows n JOIN old_rows o ON o.tenant_id = n.tenant_id AND o.id = n.id
  WHERE n.state IN ('FAILED', 'CLAIMED', 'REVOKED')
    AND n.state IS DISTINCT FROM o.state
    AND EXISTS (SELECT 1 FROM public.webhook_endpoints e
                WHERE e.tenant_id = n.tenant_id AND NOT e.disabled
                  AND 'record.' || lower(n.state) = ANY (e.event_types));
  IF v_tenants IS NOT NULL THEN
    PERFORM public.webhook_emit(v_tenants, v_types, v_data);
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION webhook_record_events() IS
  'Trigger (AFTER UPDATE ON records FOR EACH STATEMENT): a record entering FAILED, CLAIMED or '
  'REVOKED raises record.failed / record.claimed / record.revoked for the tenants subscribed '
  'to it.';
REVOKE ALL ON FUNCTION webhook_record_events() FROM PUBLIC;
CREATE TRIGGER records_webhook_events
  AFTER UPDATE ON records REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_record_events();

-- The dispatchers' cross-tenant entry point. Endpoints with due deliveries are locked SKIP
-- LOCKED first, in a statement of their own, so the in-flight count read afterwards (a new
-- snapshot) sees every lease another dispatcher committed for them: the per-endpoint cap
-- holds across dispatchers.
CREATE FUNCTION webhook_deliveries_claim(p_limit integer, p_per_endpoint integer,
                                         p_lease_seconds double precision)
RETURNS TABLE (tenant_id uuid, delivery_id uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  v_endpoints uuid[];
  v_tenants   uuid[];
BEGIN
  SELECT array_agg(e.id), array_agg(e.tenant_id) INTO v_endpoints, v_tenants
  FROM (
    SELECT e.tenant_id, e.id
    FROM public.webhook_endpoints e
    WHERE (e.tenant_id, e.id) IN (
      -- Endpoints by their oldest due delivery: one endpoint's backlog cannot fill the
      -- claim and starve the others.
      SELECT d.tenant_id, d.endpoint_id FROM public.webhook_deliveries d
      WHERE d.state = 'PENDING' AND d.next_attempt_at <= now()
      GROUP BY d.tenant_id, d.endpoint_id
      ORDER BY min(d.next_attempt_at)
      LIMIT greatest(coalesce(p_limit, 0), 0))
    FOR UPDATE SKIP LOCKED
  ) e;
  IF v_endpoints IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY
  WITH locked AS (
    SELECT u.tenant_id, u.id FROM unnest(v_tenants, v_endpoints) AS u(tenant_id, id)
  ), busy AS (
    SELECT d.tenant_id, d.endpoint_id, count(*) AS n
    FROM public.webhook_deliveries d JOIN locked l
      ON d.tenant_id = l.tenant_id AND d.endpoint_id = l.id
    WHERE d.state = 'PENDING' AND d.leased_until > now()
    GROUP BY d.tenant_id, d.endpoint_id
  ), ranked AS (
    SELECT d.tenant_id, d.id, d.next_attempt_at,
           row_number() OVER (PARTITION BY d.tenant_id, d.endpoint_id
                              ORDER BY d.next_attempt_at, d.id)
             + coalesce(b.n, 0) AS slot
    FROM public.webhook_deliveries d
    JOIN locked l ON d.tenant_id = l.tenant_id AND d.endpoint_id = l.id
    LEFT JOIN busy b ON b.tenant_id = d.tenant_id AND b.endpoint_id = d.endpoint_id
    WHERE d.state = 'PENDING' AND d.next_attempt_at <= now()
  ), picked AS (
    SELECT r.tenant_id, r.id FROM ranked r
    WHERE r.slot <= p_per_endpoint
    ORDER BY r.next_attempt_at
    LIMIT greatest(coalesce(p_limit, 0), 0)
  )
  UPDATE public.webhook_deliveries d
  SET attempts = d.attempts + 1,
      leased_until = now() + make_interval(secs => p_lease_seconds),
      next_attempt_at = now() + make_interval(secs => p_lease_seconds)
  FROM picked p
  WHERE d.tenant_id = p.tenant_id AND d.id = p.id
  RETURNING d.tenant_id, d.id;
END
$$;
COMMENT ON FUNCTION webhook_deliveries_claim(integer, integer, double precision) IS
  'Dispatcher: leases up to p_limit due PENDING deliveries of all tenants for '
  'p_lease_seconds, at most p_per_endpoint in flight per endpoint, counting the attempt. '
  'Returns ids only; the dispatcher reads the rest in the tenant''s transaction.';
REVOKE ALL ON FUNCTION webhook_deliveries_claim(integer, integer, double precision)
  FROM PUBLIC;
SELECT grant_app('EXECUTE',
                 'FUNCTION webhook_deliveries_claim(integer, integer, double precision)');
