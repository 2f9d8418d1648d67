-- The one rule for a batch's state, given its stored state and its records per state. Readers
-- (credbatch.batches.repository) show it; batches_complete stores it when a batch finishes.
-- A record is finished in every state but PENDING, QUEUED and ISSUED (FAILED too, until a
-- retry makes it PENDING again).
-- Every role may run it (no REVOKE): it reads nothing, it only computes.
CREATE OR REPLACE FUNCTION batch_state_of(p_stored text, p_cancelled boolean, p_total bigint,
                                          p_states text[], p_ns bigint[])
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
  SELECT CASE
    WHEN p_cancelled THEN 'CANCELLED'
    -- The batch as a whole could not be processed.
    WHEN p_stored = 'FAILED' THEN 'FAILED'
    WHEN c.finished >= p_total THEN
      CASE WHEN c.failed > 0 THEN 'COMPLETED_WITH_ERRORS' ELSE 'COMPLETED' END
    -- Once a record was processed the batch stays IN_PROGRESS, even when a retry puts every
    -- record back in the outbox.
    WHEN c.unstarted >= p_total AND p_stored = 'QUEUED' THEN 'QUEUED'
    ELSE 'IN_PROGRESS'
  END
  FROM (
    SELECT coalesce(sum(n) FILTER (WHERE s NOT IN ('PENDING', 'QUEUED', 'ISSUED')), 0) AS finished,
           coalesce(sum(n) FILTER (WHERE s IN ('PENDING', 'QUEUED')), 0) AS unstarted,
           coalesce(sum(n) FILTER (WHERE s = 'FAILED'), 0) AS failed
    FROM unnest(coalesce(p_states, '{}'), coalesce(p_ns, '{}')) AS u(s, n)
  ) c
$$;
COMMENT ON FUNCTION batch_state_of(text, boolean, bigint, text[], bigint[]) IS
  'A batch''s state from its stored state, whether it was cancelled, its number of records '
  'and its records per state (parallel arrays, as batch_counts_of returns them): CANCELLED, '
  'FAILED, COMPLETED(_WITH_ERRORS) once every record is finished, QUEUED before any record '
  'was processed, else IN_PROGRESS.';
