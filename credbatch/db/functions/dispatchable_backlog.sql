-- What the relay could dispatch now, for autoscaling (KEDA, as the monitoring role) and for
-- the relay's idle poll: PENDING records of active batches, CANCELLED ones left out, and so
-- are the batches a provider's throttle holds back (the relay then polls at its idle pace
-- instead of looking again every few milliseconds for work it may not send); a
-- rate-limited tenant counts for at most one second of its rate, the rest being held back.
-- Reads the key tables only.
CREATE OR REPLACE FUNCTION dispatchable_backlog(p_emails_per_second double precision DEFAULT NULL,
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
    LEFT JOIN public.dispatch_tenants t ON t.tenant_id = d.tenant_id
    LEFT JOIN public.tenant_limits l ON l.tenant_id = d.tenant_id
    WHERE bt.state <> 'CANCELLED' AND d.pending > 0
      AND NOT coalesce('EMAIL' = ANY (bt.mediums)
                       AND t.email_throttled_until > clock_timestamp(), false)
      AND NOT coalesce('SMS' = ANY (bt.mediums)
                       AND t.sms_throttled_until > clock_timestamp(), false)
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
  '(active, not cancelled batches, none held back by a provider''s throttle; a rate-limited '
  'tenant counts for at most one second of its rate). Pass the configured default rates, as '
  'the relay does.';
REVOKE ALL ON FUNCTION dispatchable_backlog(double precision, double precision) FROM PUBLIC;
-- The monitoring role's grant (it has no helper: this is its only privilege).
DO $$
BEGIN
  EXECUTE format('GRANT EXECUTE ON FUNCTION dispatchable_backlog(double precision, '
                 'double precision) TO %I', current_setting('credbatch.monitor_role'));
END
$$;
SELECT grant_relay('EXECUTE', 'FUNCTION dispatchable_backlog(double precision, double precision)');
