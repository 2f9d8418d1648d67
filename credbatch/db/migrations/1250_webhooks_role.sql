-- 1250: the webhook dispatchers claim deliveries as a role of their own.
--
-- webhook_deliveries_claim leases the due deliveries of every tenant (SECURITY DEFINER,
-- outside RLS). Granted to the application role, any tenant-scoped session of any service
-- (a request handler in uploads, templates, batch status, public, webhooks) could run it and
-- lease, and so hold back, the deliveries of every tenant. From here on only the webhooks
-- role (credbatch.webhooks_role, set by credbatch.db.migrate; LOGIN, no superuser, no
-- BYPASSRLS, owns nothing) may run it.
--
-- The claim is the dispatcher's one cross-tenant entry point: it reads and writes each
-- claimed delivery, its endpoint, event and secrets in that tenant's transaction as the
-- application role, under RLS. The other webhook functions (webhook_emit and the triggers)
-- run as the owner from triggers and are granted to nobody. A function added later for the
-- dispatchers is granted with grant_webhooks() below.

CREATE FUNCTION grant_webhooks(p_privileges text, p_object text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  EXECUTE format('GRANT %s ON %s TO %I', p_privileges, p_object,
                 current_setting('credbatch.webhooks_role'));
END
$$;
REVOKE ALL ON FUNCTION grant_webhooks(text, text) FROM PUBLIC;
COMMENT ON FUNCTION grant_webhooks(text, text) IS
  'Migration helper: GRANT p_privileges ON p_object TO the webhook dispatchers'' role named by '
  'the session setting credbatch.webhooks_role (set by credbatch.db.migrate).';

DO $$
BEGIN
  EXECUTE format(
    'REVOKE ALL ON FUNCTION webhook_deliveries_claim(integer, integer, double precision) '
    'FROM PUBLIC, %I', current_setting('credbatch.app_role'));
END
$$;
SELECT grant_webhooks('EXECUTE',
                      'FUNCTION webhook_deliveries_claim(integer, integer, double precision)');

-- What the dispatchers' metrics read across tenants: when the oldest delivery still to make
-- was created (NULL when none is). A timestamp, nothing of any tenant's data.
CREATE FUNCTION webhook_oldest_undelivered() RETURNS timestamptz
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
