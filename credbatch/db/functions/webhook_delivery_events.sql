-- record.bounced and record.delivered, written in the transaction that records the bounce or
-- receipt (records_delivery_webhook_events), so an event exists exactly when its report
-- committed. One event per channel whose delivery state entered BOUNCED or FAILED
-- (record.bounced) or DELIVERED (record.delivered); the payload names the channel, the new
-- state and its code, never the diagnostic (a remote system's text) nor an address.
CREATE OR REPLACE FUNCTION webhook_delivery_events() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
-- As in webhook_record_events: a plan cached for small transition tables must not compare
-- every pair of a large statement's rows.
SET enable_nestloop = off
AS $$
DECLARE
  v_tenants uuid[];
  v_types   text[];
  v_data    jsonb[];
BEGIN
  IF NOT EXISTS (SELECT 1 FROM public.webhook_endpoints
                 WHERE NOT disabled
                   AND event_types && ARRAY['record.bounced', 'record.delivered'])
  THEN
    RETURN NULL;
  END IF;
  WITH changed AS (
    SELECT n.tenant_id, n.batch_id, n.id, n.row_number, 'email' AS channel,
           n.email_delivery AS delivery, n.email_delivery_code AS code
    FROM new_rows n JOIN old_rows o ON o.tenant_id = n.tenant_id AND o.id = n.id
    WHERE n.email_delivery IS DISTINCT FROM o.email_delivery
    UNION ALL
    SELECT n.tenant_id, n.batch_id, n.id, n.row_number, 'sms', n.sms_delivery,
           n.sms_delivery_code
    FROM new_rows n JOIN old_rows o ON o.tenant_id = n.tenant_id AND o.id = n.id
    WHERE n.sms_delivery IS DISTINCT FROM o.sms_delivery
  ), events AS (
    SELECT c.*, CASE WHEN c.delivery = 'DELIVERED' THEN 'record.delivered'
                     ELSE 'record.bounced' END AS event_type
    FROM changed c
    WHERE c.delivery IN ('DELIVERED', 'BOUNCED', 'FAILED')
  )
  SELECT array_agg(e.tenant_id), array_agg(e.event_type),
         array_agg(jsonb_strip_nulls(jsonb_build_object(
           'batch', 'batches/' || e.batch_id,
           'record', e.id::text,
           'row_number', e.row_number,
           'channel', e.channel,
           'delivery', e.delivery,
           'delivery_code', e.code)))
  INTO v_tenants, v_types, v_data
  FROM events e
  WHERE EXISTS (SELECT 1 FROM public.webhook_endpoints w
                WHERE w.tenant_id = e.tenant_id AND NOT w.disabled
                  AND e.event_type = ANY (w.event_types));
  IF v_tenants IS NOT NULL THEN
    PERFORM public.webhook_emit(v_tenants, v_types, v_data);
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION webhook_delivery_events() IS
  'Trigger (AFTER UPDATE ON records FOR EACH STATEMENT): a channel''s delivery entering '
  'BOUNCED or FAILED raises record.bounced, entering DELIVERED record.delivered, for the '
  'tenants subscribed to it.';
REVOKE ALL ON FUNCTION webhook_delivery_events() FROM PUBLIC;
