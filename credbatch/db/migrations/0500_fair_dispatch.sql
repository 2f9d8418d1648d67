-- 0500: fair dispatch at the outbox relay.
--
-- The relay used to claim PENDING records in creation order, so a large batch put all its
-- jobs on the broker ahead of any later, smaller batch. Now it claims by virtual time (stride
-- scheduling), round robin across tenants and, within a tenant, across its batches:
--
--   * every active key, a tenant or a (tenant, batch), has a virtual time; dispatching n
--     records advances it by n / weight, and each pick takes the key with the least;
--   * a key that becomes active (or comes back from being held back by a cap or a rate
--     limit) starts at the level's clock, the least virtual time among the keys served, so
--     an idle or held-back tenant banks no credit to burst with later;
--   * the claim reads the small tables of active keys, never the backlog: its cost grows with
--     the number of active batches, not with the number of PENDING records.
--
-- Keys are kept by the statements that make records PENDING (triggers below: the upload's
-- INSERT, RetryFailedRecords' FAILED -> PENDING), each touching a batch's key once per
-- statement, and by the claim, which drops a key once its batch has nothing PENDING left or
-- is CANCELLED. Several relays claim at once: tenant and batch keys are locked SKIP LOCKED,
-- so a tenant is served by one relay at a time and the others serve the rest.
--
-- Bounded broker depth: the claim stops at a number of records published but not finished
-- (QUEUED) overall, per tenant and per batch, so work not yet dispatched waits here, where
-- a newly arrived small batch can still overtake it. Per-tenant sending rates (token
-- buckets kept in dispatch_tenants, shared by every relay) hold a tenant's records back in
-- the outbox rather than in a broker or worker slot.

-- The outbox is now read per (tenant, batch), in CSV row order, replacing records_outbox_idx.
DROP INDEX records_outbox_idx;
CREATE INDEX records_dispatch_idx ON records (tenant_id, batch_id, row_number)
  WHERE state = 'PENDING';
-- In-flight counts (overall, per tenant, per batch) read only records published and not yet
-- finished: a few thousand index entries at most, whatever the backlog.
CREATE INDEX records_in_flight_idx ON records (tenant_id, batch_id) WHERE state = 'QUEUED';

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

-- Scheduler state: owner only (no RLS, no grant; the application role reaches it only
-- through the functions below). Rows exist only for keys with work to dispatch.
CREATE TABLE dispatch_clock (
  id           boolean          PRIMARY KEY DEFAULT true CHECK (id),
  tenant_clock double precision NOT NULL DEFAULT 0
);
COMMENT ON TABLE dispatch_clock IS
  'Fair dispatch: the tenant level''s clock (one row), the least virtual time of the tenants '
  'served lately; a tenant that becomes active starts there.';
INSERT INTO dispatch_clock DEFAULT VALUES;

CREATE TABLE dispatch_tenants (
  tenant_id    uuid             PRIMARY KEY,
  vtime        double precision,
  batch_clock  double precision NOT NULL DEFAULT 0,
  email_tokens double precision,
  sms_tokens   double precision,
  tokens_at    timestamptz
);
COMMENT ON TABLE dispatch_tenants IS
  'Fair dispatch: one row per tenant with batches to dispatch. vtime NULL = newly active '
  '(starts at dispatch_clock); batch_clock is the same clock for the tenant''s batches; the '
  'token buckets of its sending rates as of tokens_at (NULL = full).';
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

-- Statement-level, with transition tables: an upload's INSERT of 2,000 records touches its
-- batch's key once, not 2,000 times.
CREATE FUNCTION dispatch_note_pending() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
  v_tenants uuid[];
  v_batches uuid[];
  v_counts bigint[];
  v_locked integer;
BEGIN
  -- Workers update records all the time and never to PENDING: leave at once.
  IF NOT EXISTS (SELECT 1 FROM new_rows WHERE state = 'PENDING') THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    SELECT array_agg(s.tenant_id), array_agg(s.batch_id), array_agg(s.n)
      INTO v_tenants, v_batches, v_counts
    FROM (SELECT n.tenant_id, n.batch_id, count(*) AS n FROM new_rows n
          WHERE n.state = 'PENDING' GROUP BY n.tenant_id, n.batch_id) s;
  ELSE
    SELECT array_agg(s.tenant_id), array_agg(s.batch_id), array_agg(s.n)
      INTO v_tenants, v_batches, v_counts
    FROM (SELECT n.tenant_id, n.batch_id, count(*) AS n
          FROM new_rows n JOIN old_rows o ON o.tenant_id = n.tenant_id AND o.id = n.id
          WHERE n.state = 'PENDING' AND o.state <> 'PENDING'
          GROUP BY n.tenant_id, n.batch_id) s;
  END IF;
  IF v_tenants IS NULL THEN
    RETURN NULL;
  END IF;
  INSERT INTO dispatch_batches AS d (tenant_id, batch_id, pending)
  SELECT u.tenant_id, u.batch_id, u.n FROM unnest(v_tenants, v_batches, v_counts)
    AS u(tenant_id, batch_id, n)
  ORDER BY u.tenant_id, u.batch_id
  ON CONFLICT (tenant_id, batch_id) DO UPDATE SET pending = d.pending + excluded.pending;
  v_tenants := ARRAY(SELECT DISTINCT t FROM unnest(v_tenants) AS t);
  -- The tenant row must exist when this transaction commits. FOR KEY SHARE keeps a relay
  -- from deleting it meanwhile (it sees no batch of the tenant, ours being uncommitted) yet
  -- lets relays serve the tenant's other batches (they lock it FOR NO KEY UPDATE). A relay
  -- that deleted it first makes the lock find nothing: insert it again.
  LOOP
    INSERT INTO dispatch_tenants (tenant_id) SELECT unnest(v_tenants) ORDER BY 1
    ON CONFLICT DO NOTHING;
    SELECT count(*) INTO v_locked FROM (
      SELECT 1 FROM dispatch_tenants t WHERE t.tenant_id = ANY (v_tenants)
      ORDER BY t.tenant_id FOR KEY SHARE) s;
    EXIT WHEN v_locked = cardinality(v_tenants);
  END LOOP;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION dispatch_note_pending() IS
  'Trigger (AFTER INSERT / UPDATE ON records, per statement): counts the records that became '
  'PENDING into their batch''s dispatch key and makes sure the tenant''s key exists.';
REVOKE ALL ON FUNCTION dispatch_note_pending() FROM PUBLIC;

CREATE TRIGGER records_dispatch_insert
  AFTER INSERT ON records REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_note_pending();
CREATE TRIGGER records_dispatch_update
  AFTER UPDATE ON records REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_note_pending();

-- Keys for what is already in the outbox when this migration runs.
INSERT INTO dispatch_batches (tenant_id, batch_id, pending)
SELECT r.tenant_id, r.batch_id, count(*) FROM records r
WHERE r.state = 'PENDING' GROUP BY r.tenant_id, r.batch_id;
INSERT INTO dispatch_tenants (tenant_id) SELECT DISTINCT d.tenant_id FROM dispatch_batches d;

-- A token bucket read at p_now: NULL when p_rate is NULL (unlimited). The bucket holds half
-- a second of the rate (at least one record), so a tenant's burst stays small against its
-- limit (at most rate x (window + 0.5 s) in any window).
CREATE FUNCTION dispatch_tokens(p_tokens double precision, p_at timestamptz,
                                p_rate double precision, p_now timestamptz)
RETURNS double precision
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT CASE WHEN p_rate IS NULL THEN NULL
    ELSE least(greatest(1, p_rate * 0.5),
               coalesce(p_tokens, greatest(1, p_rate * 0.5))
               + p_rate * greatest(0, extract(epoch FROM p_now - coalesce(p_at, p_now))))
  END
$$;
COMMENT ON FUNCTION dispatch_tokens(double precision, timestamptz, double precision,
                                    timestamptz) IS
  'Fair dispatch: the tokens of a bucket (p_tokens as of p_at) at p_now, refilled at p_rate '
  'per second up to half a second of it; NULL (unlimited) when p_rate is NULL.';
REVOKE ALL ON FUNCTION dispatch_tokens(double precision, timestamptz, double precision,
                                       timestamptz) FROM PUBLIC;

DROP FUNCTION outbox_claim(integer);

CREATE FUNCTION outbox_claim(p_limit integer, p_max_in_flight integer,
                             p_tenant_in_flight integer, p_batch_in_flight integer,
                             p_emails_per_second double precision,
                             p_sms_per_second double precision, p_quantum integer)
RETURNS TABLE (tenant_id uuid, batch_id uuid, record_id uuid, attempt integer,
               traceparent text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_budget bigint := greatest(coalesce(p_limit, 0), 0);
  v_quantum bigint := greatest(coalesce(p_quantum, 50), 1);
  v_now timestamptz := clock_timestamp();
  v_clock double precision;
  v_min double precision;
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
  t public.dispatch_tenants%ROWTYPE;
  b public.dispatch_batches%ROWTYPE;
  l public.tenant_limits%ROWTYPE;
  v_weight double precision;
  v_email double precision;
  v_sms double precision;
  v_ti integer;
  v_bi integer;
  v_t_eff double precision;
  v_t_quota bigint;
  v_t_served bigint;
  v_b_eff double precision;
  v_state text;
  v_mediums text[];
  v_trace text;
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
  IF p_max_in_flight IS NOT NULL THEN
    v_budget := least(v_budget, p_max_in_flight
                      - (SELECT count(*) FROM public.records r WHERE r.state = 'QUEUED'));
    IF v_budget <= 0 THEN
      RETURN;
    END IF;
  END IF;
  SELECT c.tenant_clock INTO v_clock FROM public.dispatch_clock c;

  WHILE v_budget > 0 LOOP
    -- The tenant with the least virtual time that no other relay is serving.
    SELECT * INTO t FROM public.dispatch_tenants d
    WHERE d.tenant_id <> ALL (v_skip_tenants)
    ORDER BY d.vtime NULLS FIRST
    LIMIT 1
    FOR NO KEY UPDATE SKIP LOCKED;
    EXIT WHEN NOT FOUND;

    SELECT * INTO l FROM public.tenant_limits x WHERE x.tenant_id = t.tenant_id;
    IF FOUND THEN
      v_weight := l.dispatch_weight;
      v_email := public.dispatch_tokens(t.email_tokens, t.tokens_at, l.emails_per_second, v_now);
      v_sms := public.dispatch_tokens(t.sms_tokens, t.tokens_at, l.sms_per_second, v_now);
    ELSE
      v_weight := 1;
      v_email := public.dispatch_tokens(t.email_tokens, t.tokens_at, p_emails_per_second, v_now);
      v_sms := public.dispatch_tokens(t.sms_tokens, t.tokens_at, p_sms_per_second, v_now);
    END IF;
    v_ti := array_position(v_tenants, t.tenant_id);
    IF v_ti IS NULL THEN
      v_tenants := v_tenants || t.tenant_id;
      v_tenant_room := v_tenant_room || CASE WHEN p_tenant_in_flight IS NULL THEN NULL::bigint
        ELSE p_tenant_in_flight - (SELECT count(*) FROM public.records r
                                   WHERE r.tenant_id = t.tenant_id AND r.state = 'QUEUED')
        END;
      v_ti := cardinality(v_tenants);
    END IF;
    v_t_quota := least(v_quantum, v_budget, v_tenant_room[v_ti]);
    v_t_served := 0;
    -- Held back or idle until now: start at the clock, with no credit.
    v_t_eff := greatest(coalesce(t.vtime, v_clock), v_clock);

    WHILE v_t_quota > 0 LOOP
      SELECT * INTO b FROM public.dispatch_batches d
      WHERE d.tenant_id = t.tenant_id AND d.batch_id <> ALL (v_skip_batches)
      ORDER BY d.vtime NULLS FIRST
      LIMIT 1
      FOR UPDATE SKIP LOCKED;
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

      SELECT bt.state, bt.mediums, bt.traceparent INTO v_state, v_mediums, v_trace
      FROM public.batches bt WHERE bt.tenant_id = b.tenant_id AND bt.id = b.batch_id;
      IF NOT FOUND OR v_state = 'CANCELLED' THEN
        DELETE FROM public.dispatch_batches d
        WHERE d.tenant_id = b.tenant_id AND d.batch_id = b.batch_id;
        v_skip_batches := v_skip_batches || b.batch_id;
        CONTINUE;
      END IF;

      v_bi := array_position(v_batches, b.batch_id);
      IF v_bi IS NULL THEN
        v_batches := v_batches || b.batch_id;
        v_batch_room := v_batch_room || CASE WHEN p_batch_in_flight IS NULL THEN NULL::bigint
          ELSE p_batch_in_flight - (SELECT count(*) FROM public.records r
                                    WHERE r.tenant_id = b.tenant_id AND r.batch_id = b.batch_id
                                      AND r.state = 'QUEUED')
          END;
        v_batch_after := v_batch_after || 0;
        v_bi := cardinality(v_batches);
      END IF;
      v_n := least(v_t_quota, v_batch_room[v_bi]);
      IF 'EMAIL' = ANY (v_mediums) THEN
        v_n := least(v_n, floor(v_email)::bigint);
      END IF;
      IF 'SMS' = ANY (v_mediums) THEN
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
        SELECT b.tenant_id, b.batch_id, u.id, u.attempt, v_trace
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
      IF 'EMAIL' = ANY (v_mediums) THEN
        v_email := v_email - v_got;
      END IF;
      IF 'SMS' = ANY (v_mediums) THEN
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
      -- The batch clock moves up to the least virtual time of the tenant's batches that
      -- can still be served (held-back ones excluded, as they are not competing).
      UPDATE public.dispatch_tenants d
      SET vtime = v_t_eff + v_t_served / v_weight,
          batch_clock = greatest(d.batch_clock, coalesce(
            (SELECT min(x.vtime) FROM public.dispatch_batches x
             WHERE x.tenant_id = t.tenant_id AND x.batch_id <> ALL (v_skip_batches)),
            d.batch_clock)),
          email_tokens = v_email, sms_tokens = v_sms, tokens_at = v_now
      WHERE d.tenant_id = t.tenant_id;
    END IF;
  END LOOP;

  -- The clock moves up to the least virtual time of the tenants still competing (those
  -- held back in this claim excluded), so a tenant that becomes active starts level with
  -- them. A relay that finds it locked by another leaves it to that one rather than wait.
  SELECT min(d.vtime) INTO v_min FROM public.dispatch_tenants d
  WHERE d.tenant_id <> ALL (v_skip_tenants);
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
  'per batch (NULL = no cap), and at each tenant''s sending rates (tenant_limits, or '
  'p_emails_per_second / p_sms_per_second for tenants without a row; NULL = unlimited). The '
  'records are locked FOR UPDATE until the caller''s transaction ends (locked keys and rows '
  'are skipped); CANCELLED batches are never claimed. Publish them, then '
  'outbox_mark_queued, then commit. With several relays the caps may be passed by the '
  'windows claimed concurrently (their records are not QUEUED yet).';
REVOKE ALL ON FUNCTION outbox_claim(integer, integer, integer, integer, double precision,
                                    double precision, integer) FROM PUBLIC;
SELECT grant_app('EXECUTE', 'FUNCTION outbox_claim(integer, integer, integer, integer, '
                            'double precision, double precision, integer)');

CREATE FUNCTION outbox_claim(p_limit integer)
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
SELECT grant_app('EXECUTE', 'FUNCTION outbox_claim(integer)');

-- Same signature and result as in 0005; it now also keeps the batches' pending counts.
CREATE OR REPLACE FUNCTION outbox_mark_queued(p_tenants uuid[], p_ids uuid[]) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  WITH done AS (
    UPDATE public.records r
    SET state = 'QUEUED', queued_at = now(), updated_at = now()
    FROM unnest(p_tenants, p_ids) AS u(tenant_id, id)
    WHERE r.tenant_id = u.tenant_id AND r.id = u.id AND r.state = 'PENDING'
    RETURNING r.tenant_id, r.batch_id
  ), per_batch AS (
    SELECT d.tenant_id, d.batch_id, count(*) AS n FROM done d GROUP BY d.tenant_id, d.batch_id
  ), counted AS (
    UPDATE public.dispatch_batches k SET pending = greatest(k.pending - p.n, 0)
    FROM per_batch p
    WHERE k.tenant_id = p.tenant_id AND k.batch_id = p.batch_id
  )
  SELECT coalesce(sum(p.n), 0)::integer FROM per_batch p
$$;

-- What the relay could dispatch now, for autoscaling: PENDING records of active batches
-- (CANCELLED ones left out); a rate-limited tenant counts for at most one second of its
-- rate, the rest being held back. Reads the key tables only.
CREATE FUNCTION dispatchable_backlog(p_emails_per_second double precision DEFAULT NULL,
                                     p_sms_per_second double precision DEFAULT NULL)
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  WITH per_batch AS (
    SELECT d.tenant_id, d.pending,
           CASE WHEN l.tenant_id IS NULL THEN p_emails_per_second ELSE l.emails_per_second END
             AS email_rate,
           CASE WHEN l.tenant_id IS NULL THEN p_sms_per_second ELSE l.sms_per_second END
             AS sms_rate,
           bt.mediums
    FROM public.dispatch_batches d
    JOIN public.batches bt ON bt.tenant_id = d.tenant_id AND bt.id = d.batch_id
    LEFT JOIN public.tenant_limits l ON l.tenant_id = d.tenant_id
    WHERE bt.state <> 'CANCELLED' AND d.pending > 0
  ), rated AS (
    SELECT p.tenant_id, p.pending,
           least(CASE WHEN 'EMAIL' = ANY (p.mediums) THEN p.email_rate END,
                 CASE WHEN 'SMS' = ANY (p.mediums) THEN p.sms_rate END) AS rate
    FROM per_batch p
  ), per_tenant AS (
    SELECT coalesce(sum(r.pending) FILTER (WHERE r.rate IS NULL), 0)
           + least(coalesce(sum(r.pending) FILTER (WHERE r.rate IS NOT NULL), 0),
                   coalesce(ceil(max(r.rate)), 0)) AS n
    FROM rated r GROUP BY r.tenant_id
  )
  SELECT coalesce(sum(n), 0)::bigint FROM per_tenant
$$;
COMMENT ON FUNCTION dispatchable_backlog(double precision, double precision) IS
  'Autoscaling and the relay''s idle poll: PENDING records the relay could dispatch now '
  '(active, not cancelled batches; a rate-limited tenant counts for at most one second of '
  'its rate). Pass the configured default rates, as the relay does.';
REVOKE ALL ON FUNCTION dispatchable_backlog(double precision, double precision) FROM PUBLIC;
SELECT grant_app('EXECUTE', 'FUNCTION dispatchable_backlog(double precision, double precision)');
DO $$
BEGIN
  EXECUTE format('GRANT EXECUTE ON FUNCTION dispatchable_backlog(double precision, '
                 'double precision) TO %I', current_setting('credbatch.monitor_role'));
END
$$;

-- The upload's quota check, in the upload's own transaction, after its records are written.
CREATE FUNCTION tenant_open_records(p_default_max bigint)
RETURNS TABLE (open_records bigint, max_open_records bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_tenant uuid := public.app_tenant();
  v_max bigint := p_default_max;
  v_open bigint;
BEGIN
  IF v_tenant IS NULL THEN
    RAISE EXCEPTION 'tenant_open_records needs a tenant transaction'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT l.max_open_records INTO v_max FROM public.tenant_limits l WHERE l.tenant_id = v_tenant;
  IF NOT FOUND THEN
    v_max := p_default_max;
  END IF;
  IF v_max IS NULL THEN
    RETURN QUERY SELECT NULL::bigint, NULL::bigint;
    RETURN;
  END IF;
  -- One upload of the tenant at a time from here to its commit, so two concurrent uploads
  -- cannot both pass a check that counts neither of the other's records.
  PERFORM pg_advisory_xact_lock(hashtextextended('credbatch.open_records:' || v_tenant, 0));
  SELECT coalesce((SELECT sum(d.pending) FROM public.dispatch_batches d
                   WHERE d.tenant_id = v_tenant), 0)
         + (SELECT count(*) FROM public.records r
            WHERE r.tenant_id = v_tenant AND r.state = 'QUEUED')
    INTO v_open;
  RETURN QUERY SELECT v_open, v_max;
END
$$;
COMMENT ON FUNCTION tenant_open_records(bigint) IS
  'Uploads: the tenant''s open records (PENDING + QUEUED, this transaction''s included) and its '
  'max_open_records (tenant_limits, else p_default_max); both NULL when unlimited. Holds a '
  'per-tenant lock until the transaction ends, so concurrent uploads are checked in turn.';
REVOKE ALL ON FUNCTION tenant_open_records(bigint) FROM PUBLIC;
SELECT grant_app('EXECUTE', 'FUNCTION tenant_open_records(bigint)');
