-- The refresher serves every tenant, so it cannot find due rows under one tenant's RLS scope.
-- This SECURITY DEFINER function is its only cross-tenant access and returns ids only; the
-- signing itself happens in the tenant's own transaction. Only the refresher's role may run
-- it (grant_refresher.sql says why): the application role may not list every tenant's lists.
CREATE OR REPLACE FUNCTION status_list_tokens_due(p_limit integer)
RETURNS TABLE (tenant_id uuid, list_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT t.tenant_id, t.list_id FROM public.status_list_tokens t
  WHERE t.due_at <= now()
  ORDER BY t.due_at
  LIMIT greatest(coalesce(p_limit, 0), 0)
$$;
COMMENT ON FUNCTION status_list_tokens_due(integer) IS
  'Refresher: up to p_limit status lists of all tenants whose token is due, most overdue first.';
REVOKE ALL ON FUNCTION status_list_tokens_due(integer) FROM PUBLIC;
-- The application role ran it before the refresher had a role of its own: a database migrated
-- then keeps that grant through CREATE OR REPLACE unless it is taken back here.
DO $$
BEGIN
  EXECUTE format('REVOKE ALL ON FUNCTION status_list_tokens_due(integer) FROM %I',
                 current_setting('credbatch.app_role'));
END
$$;
SELECT grant_refresher('EXECUTE', 'FUNCTION status_list_tokens_due(integer)');
