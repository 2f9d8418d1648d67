-- Migration helper: grants privileges to the outbox relay's role (credbatch.relay_role, set
-- by credbatch.db.migrate; LOGIN, no superuser, no BYPASSRLS, owns nothing).
--
-- The relay's functions claim, lock and move records of every tenant (SECURITY DEFINER,
-- outside RLS). Granted to the application role, any tenant-scoped session of any service
-- (a request handler in uploads, templates, batch status) could run them and lock or mark
-- the records of every tenant. So only the relay role may run them: outbox_claim,
-- outbox_mark_queued, outbox_backlog, dispatchable_backlog (which the relay polls while work
-- is held back; the monitoring role has its own grant of it), sweep_stuck and
-- batch_counts_fold (the relay folds every tenant's count deltas), each granted in its own
-- file through this helper.
CREATE OR REPLACE FUNCTION grant_relay(p_privileges text, p_object text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  EXECUTE format('GRANT %s ON %s TO %I', p_privileges, p_object,
                 current_setting('credbatch.relay_role'));
END
$$;
COMMENT ON FUNCTION grant_relay(text, text) IS
  'Migration helper: GRANT p_privileges ON p_object TO the outbox relay''s role named by the '
  'session setting credbatch.relay_role (set by credbatch.db.migrate).';
REVOKE ALL ON FUNCTION grant_relay(text, text) FROM PUBLIC;
