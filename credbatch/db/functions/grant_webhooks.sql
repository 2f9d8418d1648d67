-- Migration helper: grants privileges to the webhook dispatchers' role
-- (credbatch.webhooks_role, set by credbatch.db.migrate; LOGIN, no superuser, no BYPASSRLS,
-- owns nothing).
--
-- webhook_deliveries_claim leases the due deliveries of every tenant (SECURITY DEFINER,
-- outside RLS). Granted to the application role, any tenant-scoped session of any service
-- could run it and lease, and so hold back, the deliveries of every tenant. So only the
-- webhooks role may run it, and webhook_oldest_undelivered for the dispatchers' metrics. The
-- claim is the dispatcher's one cross-tenant entry point: it reads and writes each claimed
-- delivery, its endpoint, event and secrets in that tenant's transaction as the application
-- role, under RLS. The other webhook functions (webhook_emit and the trigger functions) run
-- as the owner from triggers and are granted to nobody.
CREATE OR REPLACE FUNCTION grant_webhooks(p_privileges text, p_object text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  EXECUTE format('GRANT %s ON %s TO %I', p_privileges, p_object,
                 current_setting('credbatch.webhooks_role'));
END
$$;
COMMENT ON FUNCTION grant_webhooks(text, text) IS
  'Migration helper: GRANT p_privileges ON p_object TO the webhook dispatchers'' role named by '
  'the session setting credbatch.webhooks_role (set by credbatch.db.migrate).';
REVOKE ALL ON FUNCTION grant_webhooks(text, text) FROM PUBLIC;
