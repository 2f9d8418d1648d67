-- Stores the final state of those batches whose records are all finished. Called by whoever
-- finished a batch's last records (the issuance worker's outcome, the relay's dead-letter
-- consumer), in a transaction of its own after that change committed: the last one to commit
-- sees every other record finished. Runs as the caller, under RLS. It updates batches rows
-- alone, and a batch with work left is not locked (its WHERE fails), so this is no hot row.
-- Every role may run it (no REVOKE): it runs as the caller, under row-level security.
CREATE OR REPLACE FUNCTION batches_complete(p_tenant uuid, p_batches uuid[]) RETURNS integer
LANGUAGE sql VOLATILE
AS $$
  WITH done AS (
    UPDATE public.batches b
    SET state = v.state, completed_at = now(), updated_at = now()
    FROM (
      SELECT x.id, batch_state_of(x.state, x.cancelled_at IS NOT NULL, x.total_records,
                                  c.states, c.ns) AS state
      FROM public.batches x
      CROSS JOIN LATERAL batch_counts_of(x.tenant_id, x.id) c
      WHERE x.tenant_id = p_tenant AND x.id = ANY (p_batches)
        AND x.state IN ('QUEUED', 'IN_PROGRESS')
    ) v
    WHERE b.tenant_id = p_tenant AND b.id = v.id AND b.state IN ('QUEUED', 'IN_PROGRESS')
      AND v.state IN ('COMPLETED', 'COMPLETED_WITH_ERRORS')
    RETURNING 1
  )
  SELECT count(*)::integer FROM done
$$;
COMMENT ON FUNCTION batches_complete(uuid, uuid[]) IS
  'Marks each of the tenant''s batches p_batches that is QUEUED or IN_PROGRESS and whose '
  'records are all finished COMPLETED or COMPLETED_WITH_ERRORS (batch_state_of), with '
  'completed_at; returns how many changed. Run after the records'' changes committed.';
