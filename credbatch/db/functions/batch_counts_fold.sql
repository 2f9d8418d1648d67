-- Folds count deltas into batch_counts (credbatch.batches.counts runs it every second, in the
-- relay process). p_batch NULL folds every batch of the tenant; p_tenant NULL every tenant.
-- One statement: the deltas it deletes are exactly the ones it adds to batch_counts. It
-- crosses tenants, so only the relay's role may run it (grant_relay.sql), never the
-- application role: no tenant-scoped session moves another tenant's rows.
CREATE OR REPLACE FUNCTION batch_counts_fold(p_tenant uuid, p_batch uuid) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
  WITH moved AS (
    DELETE FROM public.batch_count_deltas d
    WHERE (p_tenant IS NULL OR d.tenant_id = p_tenant)
      AND (p_batch IS NULL OR d.batch_id = p_batch)
    RETURNING d.tenant_id, d.batch_id, d.state, d.n, d.last_update
  ), folded AS (
    INSERT INTO public.batch_counts AS c (tenant_id, batch_id, state, n, last_update)
    SELECT tenant_id, batch_id, state, sum(n), max(last_update)
    FROM moved GROUP BY tenant_id, batch_id, state
    ON CONFLICT (tenant_id, batch_id, state) DO UPDATE
      SET n = c.n + EXCLUDED.n,
          last_update = greatest(c.last_update, EXCLUDED.last_update)
  )
  -- A data-modifying WITH runs to completion whether or not its output is read.
  SELECT count(*)::integer FROM moved
$$;
COMMENT ON FUNCTION batch_counts_fold(uuid, uuid) IS
  'Moves the deltas of batch p_batch of tenant p_tenant (NULL: all) into batch_counts in one '
  'statement; returns the number of delta rows folded. Changes no count a reader sees.';
REVOKE ALL ON FUNCTION batch_counts_fold(uuid, uuid) FROM PUBLIC;
-- The application role ran it before the fold moved to the relay: a database migrated then
-- keeps that grant through CREATE OR REPLACE unless it is taken back here.
DO $$
BEGIN
  EXECUTE format('REVOKE ALL ON FUNCTION batch_counts_fold(uuid, uuid) FROM %I',
                 current_setting('credbatch.app_role'));
END
$$;
SELECT grant_relay('EXECUTE', 'FUNCTION batch_counts_fold(uuid, uuid)');
