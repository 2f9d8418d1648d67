-- A batch's records per state, from its folded counts (batch_counts) and the deltas not yet
-- folded (batch_count_deltas): a few rows per batch however many records it has. One SQL
-- statement, STABLE and without SET or SECURITY DEFINER, so the planner inlines it into the
-- query that calls it (LATERAL) and one snapshot covers the batch and its counts.
-- Every role may run it (no REVOKE): it reads as the caller, under row-level security.
CREATE OR REPLACE FUNCTION batch_counts_of(p_tenant uuid, p_batch uuid)
RETURNS TABLE (states text[], ns bigint[], last_update timestamptz)
LANGUAGE sql STABLE
AS $$
  SELECT array_agg(s.state) FILTER (WHERE s.n <> 0),
         array_agg(s.n) FILTER (WHERE s.n <> 0),
         max(s.last_update)
  FROM (
    SELECT u.state, sum(u.n)::bigint AS n, max(u.last_update) AS last_update
    FROM (
      SELECT f.state, f.n, f.last_update
      FROM public.batch_counts f WHERE f.tenant_id = p_tenant AND f.batch_id = p_batch
      UNION ALL
      SELECT d.state, d.n, d.last_update
      FROM public.batch_count_deltas d WHERE d.tenant_id = p_tenant AND d.batch_id = p_batch
    ) u
    GROUP BY u.state
  ) s
$$;
COMMENT ON FUNCTION batch_counts_of(uuid, uuid) IS
  'The batch''s number of records per state (parallel arrays states and ns, states with no '
  'record left out) and the time of the last change counted; read under the caller''s RLS.';
