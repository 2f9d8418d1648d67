-- What the dispatchers' metrics read across tenants: when the oldest delivery still to make
-- was created (NULL when none is). A timestamp, nothing of any tenant's data.
CREATE OR REPLACE FUNCTION webhook_oldest_undelivered() RETURNS timestamptz
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  SELECT min(created_at) FROM public.webhook_deliveries WHERE state = 'PENDING'
$$;
COMMENT ON FUNCTION webhook_oldest_undelivered() IS
  'Creation time of the oldest PENDING webhook delivery of any tenant (dispatcher metrics).';
REVOKE ALL ON FUNCTION webhook_oldest_undelivered() FROM PUBLIC;
SELECT grant_webhooks('EXECUTE', 'FUNCTION webhook_oldest_undelivered()');
