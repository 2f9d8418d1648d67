-- record.failed, record.claimed, record.revoked, record.expired and record.contact_updated,
-- written in the transaction of the record's change (records_webhook_events), so an event
-- exists exactly when its change committed. record.contact_updated names the fields changed
-- (email, phone), never their values.
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
                   AND event_types && ARRAY['record.failed', 'record.claimed', 'record.revoked',
                                            'record.expired', 'record.contact_updated'])
  THEN
    RETURN NULL;
  END IF;
  -- The error code, never error_message: messages may quote the row's data.
  WITH changed AS (
    SELECT n.tenant_id, n.batch_id, n.id, n.row_number, n.error_code,
           'record.' || lower(n.state) AS type, NULL::text[] AS fields
    FROM new_rows n JOIN old_rows o ON o.tenant_id = n.tenant_id AND o.id = n.id
    WHERE n.state IN ('FAILED', 'CLAIMED', 'REVOKED', 'EXPIRED')
      AND n.state IS DISTINCT FROM o.state
    UNION ALL
    SELECT n.tenant_id, n.batch_id, n.id, n.row_number, NULL, 'record.contact_updated',
           array_remove(ARRAY[CASE WHEN n.email IS DISTINCT FROM o.email THEN 'email' END,
                              CASE WHEN n.phone IS DISTINCT FROM o.phone THEN 'phone' END],
                        NULL)
    FROM new_rows n JOIN old_rows o ON o.tenant_id = n.tenant_id AND o.id = n.id
    WHERE n.email IS DISTINCT FROM o.email OR n.phone IS DISTINCT FROM o.phone
  )
  SELECT array_agg(c.tenant_id),
         array_agg(c.type),
         array_agg(jsonb_strip_nulls(jsonb_build_object(
           'batch', 'batches/' || c.batch_id,
           'record', c.id::text,
           'row_number', c.row_number,
           'error_code', CASE WHEN c.type = 'record.failed' THEN c.error_code END,
           'fields', to_jsonb(c.fields))))
  INTO v_tenants, v_types, v_data
  FROM changed c
  WHERE EXISTS (SELECT 1 FROM public.webhook_endpoints e
                WHERE e.tenant_id = c.tenant_id AND NOT e.disabled
                  AND c.type = ANY (e.event_types));
  IF v_tenants IS NOT NULL THEN
    PERFORM public.webhook_emit(v_tenants, v_types, v_data);
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION webhook_record_events() IS
  'Trigger (AFTER UPDATE ON records FOR EACH STATEMENT): a record entering FAILED, CLAIMED, '
  'REVOKED or EXPIRED raises record.failed / record.claimed / record.revoked / record.expired, '
  'and a changed email or phone record.contact_updated, for the tenants subscribed to it.';
REVOKE ALL ON FUNCTION webhook_record_events() FROM PUBLIC;
