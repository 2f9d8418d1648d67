-- Writes the events of one statement's changes, for the webhook triggers: one event per
-- position of the parallel arrays (tenant, type, data); an event is kept only when its
-- tenant has an enabled endpoint subscribed to its type, and gets one delivery per such
-- endpoint.
CREATE OR REPLACE FUNCTION webhook_emit(p_tenants uuid[], p_types text[], p_data jsonb[])
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  WITH raised AS (
    SELECT u.tenant_id, u.type, u.data,
           'msg_' || replace(gen_random_uuid()::text, '-', '') AS id
    FROM unnest(p_tenants, p_types, p_data) AS u(tenant_id, type, data)
    WHERE EXISTS (
      SELECT 1 FROM public.webhook_endpoints e
      WHERE e.tenant_id = u.tenant_id AND NOT e.disabled AND u.type = ANY (e.event_types))
  ), events AS (
    INSERT INTO public.webhook_events (tenant_id, id, type, payload)
    SELECT tenant_id, id, type,
           jsonb_build_object(
             'type', type,
             'timestamp', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
             'data', data)
    FROM raised
    RETURNING tenant_id, id, type
  )
  INSERT INTO public.webhook_deliveries (tenant_id, id, endpoint_id, event_id)
  SELECT ev.tenant_id, gen_random_uuid(), e.id, ev.id
  FROM events ev
  JOIN public.webhook_endpoints e
    ON e.tenant_id = ev.tenant_id AND NOT e.disabled AND ev.type = ANY (e.event_types)
$$;
COMMENT ON FUNCTION webhook_emit(uuid[], text[], jsonb[]) IS
  'Triggers: records events (tenant, type, data) with a delivery per enabled subscribed '
  'endpoint; events no endpoint of their tenant subscribes to are dropped.';
REVOKE ALL ON FUNCTION webhook_emit(uuid[], text[], jsonb[]) FROM PUBLIC;
