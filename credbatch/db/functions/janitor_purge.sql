-- One step of the retention purge: the oldest ended batch, of any tenant, whose retention
-- period (tenant_retention_days) is over and whose records are all closed, gets up to
-- p_limit of its records erased (records_erase); once none is left, the batch is marked
-- purged. Each step is one short transaction of the caller: the batch row and the records it
-- erases are locked only until it commits, and locked ones are skipped (SKIP LOCKED), so a
-- purge never waits for, nor holds up, issuance or a revocation. A step cut by a crash rolls
-- back whole; the next one starts over from what is committed, so steps are idempotent.
-- Returns no row when nothing is due.
CREATE OR REPLACE FUNCTION janitor_purge(p_default_days integer, p_limit integer)
RETURNS TABLE (tenant_id uuid, batch_id uuid, purged integer, done boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_tenant uuid;
  v_batch uuid;
  v_ids uuid[];
  v_purged integer;
BEGIN
  IF p_default_days IS NULL OR p_default_days < 1 OR p_limit IS NULL OR p_limit < 1 THEN
    RAISE EXCEPTION 'janitor_purge needs at least one day and one record per step'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT b.tenant_id, b.id INTO v_tenant, v_batch
  FROM public.batches b
  WHERE b.purged_at IS NULL
    AND b.state IN ('COMPLETED', 'COMPLETED_WITH_ERRORS', 'CANCELLED', 'FAILED')
    AND coalesce(b.completed_at, b.cancelled_at)
        < now() - make_interval(days => public.tenant_retention_days(b.tenant_id,
                                                                     p_default_days))
    AND NOT EXISTS (SELECT 1 FROM public.records r
                    WHERE r.tenant_id = b.tenant_id AND r.batch_id = b.id
                      AND r.state IN ('PENDING', 'QUEUED', 'ISSUED'))
  ORDER BY coalesce(b.completed_at, b.cancelled_at)
  LIMIT 1
  FOR NO KEY UPDATE OF b SKIP LOCKED;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  SELECT coalesce(array_agg(s.id), '{}') INTO v_ids
  FROM (SELECT r.id FROM public.records r
        WHERE r.tenant_id = v_tenant AND r.batch_id = v_batch AND r.purged_at IS NULL
        LIMIT p_limit
        FOR NO KEY UPDATE SKIP LOCKED) s;
  v_purged := public.records_erase(v_tenant, v_ids, 'RETENTION');
  IF cardinality(v_ids) < p_limit AND NOT EXISTS (
      SELECT 1 FROM public.records r
      WHERE r.tenant_id = v_tenant AND r.batch_id = v_batch AND r.purged_at IS NULL
        AND NOT r.id = ANY (v_ids)) THEN
    UPDATE public.batches b SET purged_at = now()
    WHERE b.tenant_id = v_tenant AND b.id = v_batch;
    RETURN QUERY SELECT v_tenant, v_batch, v_purged, true;
  ELSE
    RETURN QUERY SELECT v_tenant, v_batch, v_purged, false;
  END IF;
END
$$;
COMMENT ON FUNCTION janitor_purge(integer, integer) IS
  'Retention purge step: erases up to p_limit records of the oldest batch of any tenant '
  'that ended more than its tenant''s retention (default p_default_days) ago, marking the '
  'batch purged once none is left; returns the batch, the records erased and whether it is '
  'done, or no row when nothing is due.';
REVOKE ALL ON FUNCTION janitor_purge(integer, integer) FROM PUBLIC;
SELECT grant_janitor('EXECUTE', 'FUNCTION janitor_purge(integer, integer)');
