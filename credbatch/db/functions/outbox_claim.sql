-- The outbox relay's claim: the PENDING records to publish next, chosen fairly.
--
-- Stride scheduling, round robin across tenants and, within a tenant, across its batches:
--
--   * every active key, a tenant or a (tenant, batch), has a virtual time; dispatching n
--     records advances it by n / weight, and each pick takes the key with the least;
--   * a key that becomes active (or comes back from being held back by a cap or a rate
--     limit) starts at the level's clock, the least virtual time among the keys served, so
--     an idle or held-back tenant banks no credit to burst with later;
--   * the claim reads the small tables of active keys (dispatch_tenants, dispatch_batches),
--     never the backlog: its cost grows with the number of active batches, not with the
--     number of PENDING records.
--
-- Keys are kept by the statements that make records PENDING (dispatch_note_pending: the
-- upload's INSERT, RetryFailedRecords' FAILED -> PENDING, the sweeper's QUEUED -> PENDING),
-- each touching a batch's key once per statement, and by the claim, which drops a key once
-- its batch has nothing PENDING left or is CANCELLED. Several relays claim at once: tenant
-- and batch keys are locked SKIP LOCKED, so a tenant is served by one relay at a time and
-- the others serve the rest.
--
-- Bounded broker depth: the claim stops at a number of records published but not finished
-- (QUEUED) overall, per tenant and per batch, so work not yet dispatched waits here, where
-- a newly arrived small batch can still overtake it. The records in flight are read once,
-- at the start, from dispatch_in_flight (kept by the records_in_flight_* triggers), into
-- two maps (jsonb objects: tenant or batch id -> records) that serve every cap of the claim;
-- looking a key up in them is an expression, not a query. Per-tenant sending rates (token buckets kept in
-- dispatch_tenants, shared by every relay) hold a tenant's records back in the outbox rather
-- than in a broker or worker slot, and so does a provider's throttle (dispatch_throttle):
-- none of the tenant's batches using the throttled channel is dispatched until it ends,
-- while its batches using other channels, and other tenants, go on.
--
-- The claim is a loop of picks, each made of named steps, one function each:
-- dispatch_choose_tenant, then, until the tenant's quantum is taken, dispatch_choose_batch
-- and dispatch_take_records; then dispatch_advance_tenant; at the end,
-- dispatch_advance_clock. This function holds what one claim knows and the steps do not:
-- its budget, the records in flight as it counts them, and the keys it has skipped.
--
-- The relay passes every argument; called with p_limit alone (tests, manual use) it is the
-- same claim with no in-flight caps and no default sending rates.
-- The one-argument overload it replaces is dropped first (databases migrated before this).
DROP FUNCTION IF EXISTS outbox_claim(integer);
CREATE OR REPLACE FUNCTION outbox_claim(p_limit integer, p_max_in_flight integer DEFAULT NULL,
                                        p_tenant_in_flight integer DEFAULT NULL,
                                        p_batch_in_flight integer DEFAULT NULL,
                                        p_emails_per_second double precision DEFAULT NULL,
                                        p_sms_per_second double precision DEFAULT NULL,
                                        p_quantum integer DEFAULT 50)
RETURNS TABLE (tenant_id uuid, batch_id uuid, record_id uuid, attempt integer,
               traceparent text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
-- Every read of the claim wants the first rows of an index in order. With a stale estimate
-- of a batch's PENDING records the planner may choose a bitmap scan of all of them (then a
-- sort) for the first few, at a cost that grows with the batch.
SET enable_bitmapscan = off
AS $$
#variable_conflict use_column
DECLARE
  v_budget bigint := greatest(coalesce(p_limit, 0), 0);  -- records the claim may still take
  v_quantum bigint := greatest(coalesce(p_quantum, 50), 1);
  v_now timestamptz := clock_timestamp();
  v_clock double precision;
  -- Records in flight as this claim counts them, per tenant and per batch (id -> records):
  -- QUEUED when it began (read only when a cap is set), plus its own takes.
  v_tenant_flight jsonb := '{}';
  v_batch_flight jsonb := '{}';
  -- The last CSV row this claim took from each batch (id -> row): its own records are still
  -- PENDING to it, so it goes on in a batch after that row.
  v_batch_after jsonb := '{}';
  -- Keys that can give nothing more to this claim (held back, exhausted).
  v_skip_tenants uuid[] := '{}';
  v_skip_batches uuid[] := '{}';
  v_served_at double precision;  -- the virtual time at which the claim last served a tenant
  -- The steps are called as expressions (x := step(...)), which PL/pgSQL evaluates without
  -- running a query around them.
  t record;  -- the tenant picked (dispatch_choose_tenant)
  b record;  -- its batch picked (dispatch_choose_batch)
  r record;  -- the records taken (dispatch_take_records)
  v_tenant_in_flight bigint;  -- the tenant's records in flight when its pick began
  v_quota bigint;  -- what the tenant's pick may still take
  v_taken bigint;  -- what it took
  v_batch_in_flight bigint;  -- the batch's records in flight
  v_n bigint;  -- what the batch may give
  v_after integer;  -- the batch's last row taken by this claim
  v_queued bigint;  -- records QUEUED when the claim began
  v_moved boolean;  -- whether the claim moved the clock (dispatch_advance_clock)
BEGIN
  IF v_budget > 0 AND coalesce(p_max_in_flight, p_tenant_in_flight, p_batch_in_flight) IS NOT NULL
  THEN
    -- One read of the records in flight serves every cap of the claim.
    WITH q AS (SELECT f.tenant_id, f.batch_id, count(*) AS n FROM public.dispatch_in_flight f
               GROUP BY f.tenant_id, f.batch_id)
    SELECT (SELECT coalesce(jsonb_object_agg(qt.tenant_id, qt.n), '{}')
            FROM (SELECT q.tenant_id, sum(q.n) AS n FROM q GROUP BY q.tenant_id) qt),
           (SELECT coalesce(jsonb_object_agg(q.batch_id, q.n), '{}') FROM q),
           (SELECT coalesce(sum(q.n), 0) FROM q)
      INTO v_tenant_flight, v_batch_flight, v_queued;
    v_budget := least(v_budget, p_max_in_flight - v_queued);
  END IF;
  IF v_budget <= 0 THEN
    RETURN;
  END IF;
  SELECT c.tenant_clock INTO v_clock FROM public.dispatch_clock c;

  WHILE v_budget > 0 LOOP
    t := public.dispatch_choose_tenant(v_skip_tenants, v_clock, v_now, p_emails_per_second,
                                       p_sms_per_second);
    EXIT WHEN t.tenant_id IS NULL;
    v_tenant_in_flight := coalesce((v_tenant_flight -> t.tenant_id::text)::bigint, 0);
    v_quota := least(v_quantum, v_budget, p_tenant_in_flight - v_tenant_in_flight);
    v_taken := 0;
    WHILE v_quota > 0 LOOP
      b := public.dispatch_choose_batch(t.tenant_id, v_skip_batches, t.batch_clock);
      EXIT WHEN b.batch_id IS NULL;
      v_batch_in_flight := coalesce((v_batch_flight -> b.batch_id::text)::bigint, 0);
      -- What the batch may give: the pick's quota within the batch's cap and the tenant's
      -- sending rates for the batch's channels.
      v_n := least(v_quota, p_batch_in_flight - v_batch_in_flight,
                   CASE WHEN 'EMAIL' = ANY (b.mediums) THEN floor(t.email_tokens)::bigint END,
                   CASE WHEN 'SMS' = ANY (b.mediums) THEN floor(t.sms_tokens)::bigint END);
      IF v_n <= 0 THEN  -- held back by its cap or a sending rate
        v_skip_batches := v_skip_batches || b.batch_id;
        CONTINUE;
      END IF;
      v_after := coalesce((v_batch_after -> b.batch_id::text)::integer, 0);
      r := public.dispatch_take_records(t.tenant_id, b.batch_id, v_after, v_n, b.vtime);
      IF r.short THEN
        v_skip_batches := v_skip_batches || b.batch_id;
      END IF;
      CONTINUE WHEN r.taken = 0;
      RETURN QUERY
        SELECT t.tenant_id, b.batch_id, u.id, u.attempt, b.traceparent
        FROM unnest(r.record_ids, r.attempts) WITH ORDINALITY AS u(id, attempt, n)
        ORDER BY u.n;
      v_batch_flight := v_batch_flight
        || jsonb_build_object(b.batch_id, v_batch_in_flight + r.taken);
      v_batch_after := v_batch_after || jsonb_build_object(b.batch_id, r.last_row);
      IF 'EMAIL' = ANY (b.mediums) THEN
        t.email_tokens := t.email_tokens - r.taken;
      END IF;
      IF 'SMS' = ANY (b.mediums) THEN
        t.sms_tokens := t.sms_tokens - r.taken;
      END IF;
      v_quota := v_quota - r.taken;
      v_taken := v_taken + r.taken;
      v_budget := v_budget - r.taken;
    END LOOP;
    IF v_taken = 0 THEN
      v_skip_tenants := v_skip_tenants || t.tenant_id;
    ELSE
      v_tenant_flight := v_tenant_flight
        || jsonb_build_object(t.tenant_id, v_tenant_in_flight + v_taken);
      v_served_at := t.vtime;
      t.vtime := public.dispatch_advance_tenant(t.tenant_id, t.vtime, v_taken, t.weight,
                                                v_skip_batches, t.email_tokens, t.sms_tokens,
                                                v_now);
    END IF;
  END LOOP;
  v_moved := public.dispatch_advance_clock(v_clock, v_skip_tenants, v_served_at);
END
$$;
COMMENT ON FUNCTION outbox_claim(integer, integer, integer, integer, double precision,
                                 double precision, integer) IS
  'Relay: up to p_limit PENDING records, chosen fairly: round robin by virtual time across '
  'tenants, and across each tenant''s batches, p_quantum records per pick. Stops at '
  'p_max_in_flight QUEUED records overall, p_tenant_in_flight per tenant, p_batch_in_flight '
  'per batch (NULL = no cap), at each tenant''s sending rates (tenant_limits, or '
  'p_emails_per_second / p_sms_per_second for tenants without a row; NULL = unlimited), and '
  'skips a tenant''s batches using a channel its provider throttled (dispatch_throttle). The '
  'records are locked FOR UPDATE until the caller''s transaction ends (locked keys and rows '
  'are skipped); CANCELLED batches are never claimed. Publish them, then '
  'outbox_mark_queued, then commit. With several relays the caps may be passed by the '
  'windows claimed concurrently (their records are not QUEUED yet).';
REVOKE ALL ON FUNCTION outbox_claim(integer, integer, integer, integer, double precision,
                                    double precision, integer) FROM PUBLIC;
SELECT grant_relay('EXECUTE', 'FUNCTION outbox_claim(integer, integer, integer, integer, '
                              'double precision, double precision, integer)');
