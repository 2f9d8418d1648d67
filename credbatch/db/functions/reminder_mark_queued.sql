-- The relay's second step for reminders: the rows whose jobs the broker confirmed are marked
-- published (queued_at), so the next claim leaves them to the worker. Unconfirmed rows stay
-- unmarked and are claimed again by the next window.
CREATE OR REPLACE FUNCTION reminder_mark_queued(p_tenants uuid[], p_ids uuid[]) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  WITH done AS (
    UPDATE public.record_reminders d SET queued_at = now()
    FROM unnest(p_tenants, p_ids) AS u(tenant_id, id)
    WHERE d.tenant_id = u.tenant_id AND d.record_id = u.id
    RETURNING 1
  )
  SELECT count(*)::integer FROM done
$$;
COMMENT ON FUNCTION reminder_mark_queued(uuid[], uuid[]) IS
  'Relay: marks the reminders of records (p_tenants[i], p_ids[i]) published (queued_at = '
  'now()) once the broker confirmed their jobs. Returns the number of rows marked.';
REVOKE ALL ON FUNCTION reminder_mark_queued(uuid[], uuid[]) FROM PUBLIC;
SELECT grant_relay('EXECUTE', 'FUNCTION reminder_mark_queued(uuid[], uuid[])');
