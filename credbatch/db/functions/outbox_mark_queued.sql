-- The relay's second step: the records it claimed, once the broker confirmed their jobs,
-- become QUEUED, and their batches' pending counts (dispatch_batches) go down.
--
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
REVOKE ALL ON FUNCTION outbox_mark_queued(uuid[], uuid[]) FROM PUBLIC;
SELECT grant_relay('EXECUTE', 'FUNCTION outbox_mark_queued(uuid[], uuid[])');
