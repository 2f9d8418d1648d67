-- The relay's claim of due reminders, beside outbox_claim's of PENDING records.
--
-- A reminder spends the same per-tenant sending rates as an invitation: the token buckets of
-- the tenant's dispatch key (dispatch_tenants), one token of each of its batch's channels,
-- and it is held back while a provider throttles that channel (dispatch_throttle). A tenant
-- with due reminders but nothing PENDING gets a key here (dispatch_choose_batch keeps it
-- while reminders are due), so its buckets hold between claims rather than starting full. A
-- pick advances the tenant's virtual time as outbox_claim's do, so reminders take their
-- share of the tenant's turn in the round robin across tenants.
--
-- Work in flight is bounded as outbox_claim bounds it: with p_max_in_flight set, the claim
-- takes at most what the cap leaves after the records QUEUED (dispatch_in_flight) and the
-- reminders published and not finished.
--
-- Tenants are served in turn, the one with the least virtual time first, up to p_quantum
-- reminders each per turn, until p_limit reminders are taken or none is left that the rates
-- allow. Rows are locked FOR UPDATE SKIP LOCKED until the caller's transaction ends; the
-- caller publishes their jobs and marks the confirmed ones (reminder_mark_queued). A row
-- whose record is no longer INVITED (claimed, revoked, expired, cancelled, invited again),
-- whose personal data was erased, whose claim link has run out or whose batch was cancelled
-- is dropped on the way: its
-- reminders are over (an invitation again starts a new schedule). A row published more than
-- p_stuck_after seconds ago and not finished is published again.
DROP FUNCTION IF EXISTS reminder_claim(integer, double precision, double precision, integer,
                                       double precision);
CREATE OR REPLACE FUNCTION reminder_claim(p_limit integer,
                                          p_emails_per_second double precision DEFAULT NULL,
                                          p_sms_per_second double precision DEFAULT NULL,
                                          p_quantum integer DEFAULT 50,
                                          p_stuck_after double precision DEFAULT 600,
                                          p_max_in_flight integer DEFAULT NULL)
RETURNS TABLE (tenant_id uuid, batch_id uuid, record_id uuid, step integer,
               traceparent text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_budget bigint := greatest(coalesce(p_limit, 0), 0);
  v_quantum bigint := greatest(coalesce(p_quantum, 50), 1);
  v_now timestamptz := clock_timestamp();
  v_stuck timestamptz := clock_timestamp() - make_interval(secs => coalesce(p_stuck_after, 600));
  v_clock double precision;
  v_tenants uuid[];
  v_tenant uuid;
  k record;
  r record;
  v_email double precision;
  v_sms double precision;
  v_weight double precision;
  v_taken bigint;
BEGIN
  IF v_budget <= 0 THEN
    RETURN;
  END IF;
  -- The tenants with a due reminder; each gets a dispatch key if it has none. Looked for
  -- before the records in flight are counted: the relay asks every window, and most windows
  -- find no reminder due.
  SELECT coalesce(array_agg(DISTINCT d.tenant_id), '{}') INTO v_tenants
  FROM public.record_reminders d
  WHERE d.due_at <= v_now AND (d.queued_at IS NULL OR d.queued_at < v_stuck);
  IF cardinality(v_tenants) = 0 THEN
    RETURN;
  END IF;
  IF p_max_in_flight IS NOT NULL THEN
    v_budget := least(v_budget, p_max_in_flight
      - (SELECT count(*) FROM public.dispatch_in_flight)
      - (SELECT count(*) FROM public.record_reminders m WHERE m.queued_at IS NOT NULL));
    IF v_budget <= 0 THEN
      RETURN;
    END IF;
  END IF;
  SELECT c.tenant_clock INTO v_clock FROM public.dispatch_clock c;
  INSERT INTO public.dispatch_tenants (tenant_id)
  SELECT u FROM unnest(v_tenants) u
  ON CONFLICT DO NOTHING;

  WHILE v_budget > 0 AND cardinality(v_tenants) > 0 LOOP
    SELECT d.tenant_id, d.vtime, d.email_tokens, d.sms_tokens, d.tokens_at,
           d.email_throttled_until, d.sms_throttled_until,
           l.tenant_id IS NOT NULL AS limited, l.dispatch_weight,
           l.emails_per_second, l.sms_per_second
      INTO k
    FROM public.dispatch_tenants d
    LEFT JOIN public.tenant_limits l ON l.tenant_id = d.tenant_id
    WHERE d.tenant_id = ANY (v_tenants)
    ORDER BY d.vtime NULLS FIRST
    LIMIT 1
    FOR NO KEY UPDATE OF d SKIP LOCKED;
    EXIT WHEN NOT FOUND;  -- the rest are held by other relays
    v_tenant := k.tenant_id;
    v_tenants := array_remove(v_tenants, v_tenant);
    IF k.limited THEN
      v_weight := k.dispatch_weight;
      v_email := public.dispatch_tokens(k.email_tokens, k.tokens_at, k.emails_per_second, v_now);
      v_sms := public.dispatch_tokens(k.sms_tokens, k.tokens_at, k.sms_per_second, v_now);
    ELSE
      v_weight := 1;
      v_email := public.dispatch_tokens(k.email_tokens, k.tokens_at, p_emails_per_second, v_now);
      v_sms := public.dispatch_tokens(k.sms_tokens, k.tokens_at, p_sms_per_second, v_now);
    END IF;
    IF k.email_throttled_until > v_now THEN
      v_email := 0;
    END IF;
    IF k.sms_throttled_until > v_now THEN
      v_sms := 0;
    END IF;
    v_taken := 0;
    FOR r IN
      SELECT d.record_id, d.batch_id, d.step, b.mediums, b.traceparent,
             b.state = 'CANCELLED' AS cancelled,
             rec.state = 'INVITED' AND rec.purged_at IS NULL
               AND (c.claim_expires_at IS NULL OR c.claim_expires_at > v_now) AS open
      FROM public.record_reminders d
      JOIN public.batches b ON b.tenant_id = d.tenant_id AND b.id = d.batch_id
      JOIN public.records rec ON rec.tenant_id = d.tenant_id AND rec.id = d.record_id
      LEFT JOIN public.credentials c ON c.tenant_id = d.tenant_id AND c.record_id = d.record_id
      WHERE d.tenant_id = v_tenant AND d.due_at <= v_now
        AND (d.queued_at IS NULL OR d.queued_at < v_stuck)
      ORDER BY d.due_at
      LIMIT least(v_quantum, v_budget) * 4
      FOR UPDATE OF d SKIP LOCKED
    LOOP
      IF r.cancelled OR NOT coalesce(r.open, false) THEN
        DELETE FROM public.record_reminders d
        WHERE d.tenant_id = v_tenant AND d.record_id = r.record_id;
        CONTINUE;
      END IF;
      -- Held back by a sending rate: later rows of other channels may still go.
      CONTINUE WHEN 'EMAIL' = ANY (r.mediums) AND v_email < 1;
      CONTINUE WHEN 'SMS' = ANY (r.mediums) AND v_sms < 1;
      IF 'EMAIL' = ANY (r.mediums) THEN
        v_email := v_email - 1;
      END IF;
      IF 'SMS' = ANY (r.mediums) THEN
        v_sms := v_sms - 1;
      END IF;
      tenant_id := v_tenant;
      batch_id := r.batch_id;
      record_id := r.record_id;
      step := r.step;
      traceparent := r.traceparent;
      RETURN NEXT;
      v_taken := v_taken + 1;
      v_budget := v_budget - 1;
      EXIT WHEN v_taken >= least(v_quantum, v_budget + v_taken);
    END LOOP;
    IF v_taken > 0 THEN
      UPDATE public.dispatch_tenants d
      SET vtime = greatest(coalesce(k.vtime, v_clock), v_clock) + v_taken / v_weight,
          email_tokens = CASE WHEN d.email_throttled_until > v_now THEN d.email_tokens
                              ELSE v_email END,
          sms_tokens = CASE WHEN d.sms_throttled_until > v_now THEN d.sms_tokens
                            ELSE v_sms END,
          tokens_at = v_now
      WHERE d.tenant_id = v_tenant;
    END IF;
  END LOOP;
END
$$;
COMMENT ON FUNCTION reminder_claim(integer, double precision, double precision, integer,
                                   double precision, integer) IS
  'Relay: up to p_limit due reminders (record_reminders), tenants served in turn by virtual '
  'time, p_quantum per turn, each spending a token of its batch''s channels from the tenant''s '
  'buckets (tenant_limits, or p_emails_per_second / p_sms_per_second; NULL = unlimited) and '
  'held back while a channel is throttled. Rows are locked FOR UPDATE until the caller''s '
  'transaction ends; rows whose record is no longer INVITED, whose claim link ran out or whose '
  'batch was cancelled are deleted. Rows published p_stuck_after seconds ago and unfinished '
  'are claimed again; with p_max_in_flight, at most what it leaves after the QUEUED records '
  'and the reminders in flight. Publish the jobs, then reminder_mark_queued, then commit.';
REVOKE ALL ON FUNCTION reminder_claim(integer, double precision, double precision, integer,
                                      double precision, integer) FROM PUBLIC;
SELECT grant_relay('EXECUTE', 'FUNCTION reminder_claim(integer, double precision, '
                              'double precision, integer, double precision, integer)');
