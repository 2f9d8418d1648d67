-- A batch's records per state, from its folded counts (batch_counts) and the deltas not yet
-- folded (batch_count_deltas): a few rows per batch however many records it has. One SQL
-- statement, STABLE and without SET or SECURITY DEFINER, so the planner inlines it into the
-- query that calls it (LATERAL) and one snapshot covers the batch and its counts.
-- The count rows keyed DELIVERED and BOUNCED are not record states: they count the records
-- whose invitation was delivered, or bounced or failed, on some channel
-- (records_count_changes), and come out as delivered and bounced, never among the states.
-- Every role may run it (no REVOKE): it reads as the caller, under row-level security.
-- The result gained delivered and bounced, which CREATE OR REPLACE cannot add.
DROP FUNCTION IF EXISTS batch_counts_of(uuid, uuid);
CREATE OR REPLACE FUNCTION batch_counts_of(p_tenant uuid, p_batch uuid)
RETURNS TABLE (states text[], ns bigint[], last_update timestamptz, delivered bigint,
               bounced bigint)
LANGUAGE sql STABLE
AS $$
  SELECT array_agg(s.state) FILTER (WHERE s.n <> 0 AND s.state NOT IN ('DELIVERED', 'BOUNCED')),
         array_agg(s.n) FILTER (WHERE s.n <> 0 AND s.state NOT IN ('DELIVERED', 'BOUNCED')),
         max(s.last_update),
         coalesce(sum(s.n) FILTER (WHERE s.state = 'DELIVERED'), 0)::bigint,
         coalesce(sum(s.n) FILTER (WHERE s.state = 'BOUNCED'), 0)::bigint
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
  'record left out), the time of the last change counted, and its records whose invitation '
  'was delivered (delivered) or bounced or failed (bounced) on some channel; read under the '
  'caller''s RLS.';
