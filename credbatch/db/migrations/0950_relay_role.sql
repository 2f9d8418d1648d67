-- 0950: the outbox relay runs as a role of its own.
--
-- The relay's functions claim, lock and move records of every tenant (SECURITY DEFINER,
-- outside RLS). Granted to the application role, any tenant-scoped session of any service
-- (a request handler in uploads, templates, batch status, public) could run them and lock or
-- mark the records of every tenant. From here on only the relay role (credbatch.relay_role,
-- set by credbatch.db.migrate; LOGIN, no superuser, no BYPASSRLS, owns nothing) may run them.
--
-- The relay's entry points are the functions named outbox_* (claim and mark queued, and any
-- function an earlier migration added under that name) and dispatchable_backlog, which the
-- relay polls while work is held back; the monitoring role keeps its own grant of the latter.
-- A function added later for the relay is granted with grant_relay() below.

CREATE FUNCTION grant_relay(p_privileges text, p_object text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, public, pg_temp
AS $$
BEGIN
  EXECUTE format('GRANT %s ON %s TO %I', p_privileges, p_object,
                 current_setting('credbatch.relay_role'));
END
$$;
REVOKE ALL ON FUNCTION grant_relay(text, text) FROM PUBLIC;
COMMENT ON FUNCTION grant_relay(text, text) IS
  'Migration helper: GRANT p_privileges ON p_object TO the outbox relay''s role named by the '
  'session setting credbatch.relay_role (set by credbatch.db.migrate).';

-- Marking QUEUED is limited to the records the calling transaction claimed. The claim locks
-- its records FOR UPDATE, which stamps the transaction's id in each locked row's xmax (a
-- lock writes no new row version); nothing else in the relay's transaction locks or changes
-- records. So "xmax is my transaction id" is exactly "claimed by me, in this transaction",
-- checked on rows the update reads anyway: no table, temporary table or write is added to a
-- window. A transaction that claimed nothing has no id assigned yet, and the _if_assigned
-- form then yields NULL, which matches no row. The claim and the mark must run at the top
-- level of one transaction (not in a savepoint, whose rows carry a subtransaction's id).
CREATE OR REPLACE FUNCTION outbox_mark_queued(p_tenants uuid[], p_ids uuid[]) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  WITH done AS (
    UPDATE public.records r
    SET state = 'QUEUED', queued_at = now(), updated_at = now()
    FROM unnest(p_tenants, p_ids) AS u(tenant_id, id)
    WHERE r.tenant_id = u.tenant_id AND r.id = u.id AND r.state = 'PENDING'
      AND r.xmax = pg_current_xact_id_if_assigned()::xid
    RETURNING r.tenant_id, r.batch_id
  ), per_batch AS (
    SELECT d.tenant_id, d.batch_id, count(*) AS n FROM done d GROUP BY d.tenant_id, d.batch_id
  ), counted AS (
    UPDATE public.dispatch_batches k SET pending = greatest(k.pending - p.n, 0)
    FROM per_batch p
    WHERE k.tenant_id = p.tenant_id AND k.batch_id = p.batch_id
  )
  SELECT coalesce(sum(p.n), 0)::integer FROM per_batch p
$$;
COMMENT ON FUNCTION outbox_mark_queued(uuid[], uuid[]) IS
  'Relay: marks the records (p_tenants[i], p_ids[i]) QUEUED (queued_at = now()) once their '
  'jobs are confirmed by the broker. Only records that outbox_claim locked in the calling '
  'transaction change (same transaction, top level); others, and rows no longer PENDING, are '
  'left alone. Returns the number of rows changed.';

DO $$
DECLARE
  v_app text := current_setting('credbatch.app_role');
  v_relay text := current_setting('credbatch.relay_role');
  v_fn regprocedure;
BEGIN
  FOR v_fn IN
    SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace
      AND (p.proname LIKE 'outbox\_%' OR p.proname = 'dispatchable_backlog')
    ORDER BY 1
  LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC, %I', v_fn, v_app);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', v_fn, v_relay);
  END LOOP;
END
$$;
