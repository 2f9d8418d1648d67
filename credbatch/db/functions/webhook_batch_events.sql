-- batch.completed, batch.completed_with_errors, batch.cancelled and batch.failed, written in
-- the transaction of the batch's change (batches_webhook_events), so an event exists exactly
-- when its change committed.
CREATE OR REPLACE FUNCTION webhook_batch_events() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
-- PL/pgSQL plans a query without parameters once per backend, at its first run, and keeps
-- that plan, sizing the transition tables by what they held then: a pooled connection whose
-- first statement changed a few records would keep a nested loop of old_rows x new_rows and
-- compare every pair of a later statement over thousands. Without nested loops the
-- transition tables are hashed, in time linear in the statement's rows whatever size the
-- plan was made for.
SET enable_nestloop = off
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
