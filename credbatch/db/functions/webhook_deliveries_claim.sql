-- The dispatchers' cross-tenant entry point, run as the webhooks role only (see
-- grant_webhooks.sql). Endpoints with due deliveries are locked SKIP LOCKED first, in a
-- statement of their own, so the in-flight count read afterwards (a new snapshot) sees every
-- lease another dispatcher committed for them: the per-endpoint cap holds across
-- dispatchers.
CREATE OR REPLACE FUNCTION webhook_deliveries_claim(p_limit integer, p_per_endpoint integer,
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
SELECT grant_webhooks('EXECUTE',
                      'FUNCTION webhook_deliveries_claim(integer, integer, double precision)');
