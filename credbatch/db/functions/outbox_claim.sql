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
-- at the start, from dispatch_in_flight (kept by the records_in_flight_* triggers), and
-- serve every cap of the claim. Per-tenant sending rates (token buckets kept in
-- dispatch_tenants, shared by every relay) hold a tenant's records back in the outbox rather
-- than in a broker or worker slot, and so does a provider's throttle (dispatch_throttle):
-- none of the tenant's batches using the throttled channel is dispatched until it ends,
-- while its batches using other channels, and other tenants, go on. A tenant's limits come
-- with its key, and a batch's state, mediums and trace context with its key, each in the
-- statement that locks the key.
--
-- Two overloads: outbox_claim(integer) is the same claim with no in-flight caps and no
-- default sending rates, for tests and manual use; the relay calls the full one.
CREATE OR REPLACE FUNCTION outbox_claim(p_limit integer, p_max_in_flight integer,
                                        p_tenant_in_flight integer, p_batch_in_flight integer,
                                        p_emails_per_second double precision,
                                        p_sms_per_second double precision, p_quantum integer)
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
  v_budget bigint := greatest(coalesce(p_limit, 0), 0);
  v_quantum bigint := greatest(coalesce(p_quantum, 50), 1);
  v_now timestamptz := clock_timestamp();
  v_capped boolean := p_max_in_flight IS NOT NULL OR p_tenant_in_flight IS NOT NULL
                      OR p_batch_in_flight IS NOT NULL;
  v_clock double precision;
  v_min double precision;
  -- The virtual time at which the claim last served a tenant.
  v_served_at double precision;
  -- Records QUEUED when the claim began, per batch (read only when a cap is set).
  v_q_tenants uuid[] := '{}';
  v_q_batches uuid[] := '{}';
  v_q_counts bigint[] := '{}';
  -- Keys that can give nothing more to this claim (held back, exhausted, locked).
  v_skip_tenants uuid[] := '{}';
  v_skip_batches uuid[] := '{}';
  -- Per tenant / batch met in this claim: in-flight room left (NULL = no cap) and, per
  -- batch, the last row claimed: the claim's own locked records are still PENDING to it.
  v_tenants uuid[] := '{}';
  v_tenant_room bigint[] := '{}';
  v_batches uuid[] := '{}';
  v_batch_room bigint[] := '{}';
  v_batch_after integer[] := '{}';
  t record;
  b record;
  v_weight double precision;
  v_email double precision;
  v_sms double precision;
  v_qi integer;
  v_ti integer;
  v_bi integer;
  v_t_eff double precision;
  v_t_quota bigint;
  v_t_served bigint;
  v_b_eff double precision;
  v_n bigint;
  v_got bigint;
  v_last integer;
  v_ids uuid[];
  v_attempts integer[];
  v_left bigint;
BEGIN
  IF v_budget = 0 THEN
    RETURN;
  END IF;
  IF v_capped THEN
    -- One read of the records in flight serves every cap of the claim.
    SELECT coalesce(array_agg(q.tenant_id), '{}'), coalesce(array_agg(q.batch_id), '{}'),
           coalesce(array_agg(q.n), '{}')
      INTO v_q_tenants, v_q_batches, v_q_counts
    FROM (SELECT f.tenant_id, f.batch_id, count(*) AS n FROM public.dispatch_in_flight f
          GROUP BY f.tenant_id, f.batch_id) q;
  END IF;
  IF p_max_in_flight IS NOT NULL THEN
    v_budget := least(v_budget, p_max_in_flight
                      - coalesce((SELECT sum(n) FROM unnest(v_q_counts) AS n), 0));
    IF v_budget <= 0 THEN
      RETURN;
    END IF;
  END IF;
  SELECT c.tenant_clock INTO v_clock FROM public.dispatch_clock c;

  WHILE v_budget > 0 LOOP
    -- The tenant with the least virtual time that no other relay is serving, with its limits.
    SELECT d.tenant_id, d.vtime, d.batch_clock, d.email_tokens, d.sms_tokens, d.tokens_at,
           d.email_throttled_until, d.sms_throttled_until,
           l.tenant_id IS NOT NULL AS limited, l.dispatch_weight,
           l.emails_per_second, l.sms_per_second
      INTO t
    FROM public.dispatch_tenants d
    LEFT JOIN public.tenant_limits l ON l.tenant_id = d.tenant_id
    WHERE d.tenant_id <> ALL (v_skip_tenants)
    ORDER BY d.vtime NULLS FIRST
    LIMIT 1
    FOR NO KEY UPDATE OF d SKIP LOCKED;
    EXIT WHEN NOT FOUND;

    IF t.limited THEN
      v_weight := t.dispatch_weight;
      v_email := public.dispatch_tokens(t.email_tokens, t.tokens_at, t.emails_per_second, v_now);
      v_sms := public.dispatch_tokens(t.sms_tokens, t.tokens_at, t.sms_per_second, v_now);
    ELSE
      v_weight := 1;
      v_email := public.dispatch_tokens(t.email_tokens, t.tokens_at, p_emails_per_second, v_now);
      v_sms := public.dispatch_tokens(t.sms_tokens, t.tokens_at, p_sms_per_second, v_now);
    END IF;
    -- A throttled channel sends nothing until the provider's delay has passed.
    IF t.email_throttled_until > v_now THEN
      v_email := 0;
    END IF;
    IF t.sms_throttled_until > v_now THEN
      v_sms := 0;
    END IF;
    v_ti := array_position(v_tenants, t.tenant_id);
    IF v_ti IS NULL THEN
      v_tenants := v_tenants || t.tenant_id;
      v_tenant_room := v_tenant_room || CASE WHEN p_tenant_in_flight IS NULL THEN NULL::bigint
        ELSE p_tenant_in_flight - coalesce((SELECT sum(q.n)
                                            FROM unnest(v_q_tenants, v_q_counts) AS q(t, n)
                                            WHERE q.t = t.tenant_id), 0)
        END;
      v_ti := cardinality(v_tenants);
    END IF;
    v_t_quota := least(v_quantum, v_budget, v_tenant_room[v_ti]);
    v_t_served := 0;
    -- Held back or idle until now: start at the clock, with no credit.
    v_t_eff := greatest(coalesce(t.vtime, v_clock), v_clock);

    WHILE v_t_quota > 0 LOOP
      SELECT d.tenant_id, d.batch_id, d.vtime, bt.id IS NOT NULL AS found, bt.state,
             bt.mediums, bt.traceparent
        INTO b
      FROM public.dispatch_batches d
      LEFT JOIN public.batches bt ON bt.tenant_id = d.tenant_id AND bt.id = d.batch_id
      WHERE d.tenant_id = t.tenant_id AND d.batch_id <> ALL (v_skip_batches)
      ORDER BY d.vtime NULLS FIRST
      LIMIT 1
      FOR UPDATE OF d SKIP LOCKED;
      IF NOT FOUND THEN
        -- Nothing left at all: drop the tenant's key, unless an upload or a retry still
        -- adding a batch holds it (FOR KEY SHARE, see dispatch_note_pending).
        IF NOT EXISTS (SELECT 1 FROM public.dispatch_batches d
                       WHERE d.tenant_id = t.tenant_id) THEN
          PERFORM 1 FROM public.dispatch_tenants d WHERE d.tenant_id = t.tenant_id
          FOR UPDATE SKIP LOCKED;
          IF FOUND THEN
            DELETE FROM public.dispatch_tenants d WHERE d.tenant_id = t.tenant_id;
          END IF;
        END IF;
        EXIT;
      END IF;

      IF NOT b.found OR b.state = 'CANCELLED' THEN
        DELETE FROM public.dispatch_batches d
        WHERE d.tenant_id = b.tenant_id AND d.batch_id = b.batch_id;
        v_skip_batches := v_skip_batches || b.batch_id;
        CONTINUE;
      END IF;

      v_bi := array_position(v_batches, b.batch_id);
      IF v_bi IS NULL THEN
        v_batches := v_batches || b.batch_id;
        v_qi := array_position(v_q_batches, b.batch_id);
        v_batch_room := v_batch_room || CASE WHEN p_batch_in_flight IS NULL THEN NULL::bigint
          ELSE p_batch_in_flight - CASE WHEN v_qi IS NULL THEN 0 ELSE v_q_counts[v_qi] END
          END;
        v_batch_after := v_batch_after || 0;
        v_bi := cardinality(v_batches);
      END IF;
      v_n := least(v_t_quota, v_batch_room[v_bi]);
      IF 'EMAIL' = ANY (b.mediums) THEN
        v_n := least(v_n, floor(v_email)::bigint);
      END IF;
      IF 'SMS' = ANY (b.mediums) THEN
        v_n := least(v_n, floor(v_sms)::bigint);
      END IF;
      IF v_n <= 0 THEN
        v_skip_batches := v_skip_batches || b.batch_id;
        CONTINUE;
      END IF;

      SELECT array_agg(s.id ORDER BY s.row_number), array_agg(s.attempt ORDER BY s.row_number),
             max(s.row_number)
        INTO v_ids, v_attempts, v_last
      FROM (SELECT r.id, r.attempt, r.row_number
            FROM public.records r
            WHERE r.tenant_id = b.tenant_id AND r.batch_id = b.batch_id
              AND r.state = 'PENDING' AND r.row_number > v_batch_after[v_bi]
            ORDER BY r.row_number
            LIMIT v_n
            FOR UPDATE OF r SKIP LOCKED) s;
      v_got := coalesce(cardinality(v_ids), 0);
      RETURN QUERY
        SELECT b.tenant_id, b.batch_id, u.id, u.attempt, b.traceparent
        FROM unnest(v_ids, v_attempts) WITH ORDINALITY AS u(id, attempt, n)
        ORDER BY u.n;

      IF v_got < v_n THEN
        -- Short: PENDING records, locked or not, decide whether the batch is done.
        SELECT count(*) INTO v_left FROM public.records r
        WHERE r.tenant_id = b.tenant_id AND r.batch_id = b.batch_id AND r.state = 'PENDING';
        IF v_left = 0 THEN
          DELETE FROM public.dispatch_batches d
          WHERE d.tenant_id = b.tenant_id AND d.batch_id = b.batch_id;
        ELSE
          UPDATE public.dispatch_batches d SET pending = v_left
          WHERE d.tenant_id = b.tenant_id AND d.batch_id = b.batch_id;
        END IF;
        v_skip_batches := v_skip_batches || b.batch_id;
      END IF;
      CONTINUE WHEN v_got = 0;

      v_batch_after[v_bi] := v_last;
      v_batch_room[v_bi] := v_batch_room[v_bi] - v_got;
      v_tenant_room[v_ti] := v_tenant_room[v_ti] - v_got;
      IF 'EMAIL' = ANY (b.mediums) THEN
        v_email := v_email - v_got;
      END IF;
      IF 'SMS' = ANY (b.mediums) THEN
        v_sms := v_sms - v_got;
      END IF;
      v_b_eff := greatest(coalesce(b.vtime, t.batch_clock), t.batch_clock);
      UPDATE public.dispatch_batches d SET vtime = v_b_eff + v_got
      WHERE d.tenant_id = b.tenant_id AND d.batch_id = b.batch_id;
      v_t_quota := v_t_quota - v_got;
      v_t_served := v_t_served + v_got;
      v_budget := v_budget - v_got;
    END LOOP;

    IF v_t_served = 0 THEN
      v_skip_tenants := v_skip_tenants || t.tenant_id;
    ELSE
      v_served_at := v_t_eff;
      -- The batch clock moves up to the least virtual time of the tenant's batches that
      -- can still be served (held-back ones excluded, as they are not competing). The
      -- buckets are stored as counted: a throttled channel's bucket is left as it was.
      UPDATE public.dispatch_tenants d
      SET vtime = v_t_eff + v_t_served / v_weight,
          batch_clock = greatest(d.batch_clock, coalesce(
            (SELECT min(x.vtime) FROM public.dispatch_batches x
             WHERE x.tenant_id = t.tenant_id AND x.batch_id <> ALL (v_skip_batches)),
            d.batch_clock)),
          email_tokens = CASE WHEN t.email_throttled_until > v_now THEN d.email_tokens
                              ELSE v_email END,
          sms_tokens = CASE WHEN t.sms_throttled_until > v_now THEN d.sms_tokens
                            ELSE v_sms END,
          tokens_at = v_now
      WHERE d.tenant_id = t.tenant_id;
    END IF;
  END LOOP;

  -- The clock moves up to the least virtual time of the tenants still competing (those
  -- held back in this claim excluded), so a tenant that becomes active starts level with
  -- them. When every tenant ends the claim held back, it moves up to where the claim last
  -- served: a tenant served alone while the others were held back would otherwise leave the
  -- clock behind, and the others would come back with credit for the time they sat out.
  -- A relay that finds it locked by another leaves it to that one rather than wait.
  SELECT min(d.vtime) INTO v_min FROM public.dispatch_tenants d
  WHERE d.tenant_id <> ALL (v_skip_tenants);
  v_min := coalesce(v_min, v_served_at);
  IF v_min > v_clock THEN
    PERFORM 1 FROM public.dispatch_clock c FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
      UPDATE public.dispatch_clock c SET tenant_clock = greatest(c.tenant_clock, v_min);
    END IF;
  END IF;
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

CREATE OR REPLACE FUNCTION outbox_claim(p_limit integer)
RETURNS TABLE (tenant_id uuid, batch_id uuid, record_id uuid, attempt integer,
               traceparent text)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT * FROM public.outbox_claim(p_limit, NULL, NULL, NULL, NULL, NULL, 50)
$$;
COMMENT ON FUNCTION outbox_claim(integer) IS
  'Relay: outbox_claim with no in-flight caps and no default sending rates (tenant_limits '
  'still apply).';
REVOKE ALL ON FUNCTION outbox_claim(integer) FROM PUBLIC;
SELECT grant_relay('EXECUTE', 'FUNCTION outbox_claim(integer)');
