-- record.failed, record.claimed and record.revoked, written in the transaction of the
-- record's change (records_webhook_events), so an event exists exactly when its change
-- committed.
CREATE OR REPLACE FUNCTION webhook_record_events() RETURNS trigger
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
