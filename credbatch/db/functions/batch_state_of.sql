-- The one rule for a batch's state, given its stored state and its records per state. Readers
-- (credbatch.batches.repository) show it; batches_complete stores it when a batch finishes.
-- A record is finished in every state but PENDING, QUEUED and ISSUED (FAILED too, until a
-- retry makes it PENDING again).
-- Every role may run it (no REVOKE): it reads nothing, it only computes.
-- PL/pgSQL, not SQL: a SQL function with a FROM clause is never inlined, so every statement that
-- called it parsed and planned its body again (about 130 µs of a one-row upload's statement);
-- PL/pgSQL keeps its compiled body per connection and walks the few states in a loop.
CREATE OR REPLACE FUNCTION batch_state_of(p_stored text, p_cancelled boolean, p_total bigint,
                                          p_states text[], p_ns bigint[])
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
DECLARE
  v_finished bigint := 0;
  v_unstarted bigint := 0;
  v_failed bigint := 0;
  v_state text;
  v_n bigint;
BEGIN
  IF p_cancelled THEN
    RETURN 'CANCELLED';
  END IF;
  -- The batch as a whole could not be processed.
  IF p_stored = 'FAILED' THEN
    RETURN 'FAILED';
  END IF;
  -- Paired as unnest(p_states, p_ns) pairs them: a count past the last state has no state
  -- and counts nowhere, a state past the last count (or with a NULL one) counts 0; a NULL
  -- state fails both tests below and counts nowhere either.
  FOR i IN 1 .. coalesce(cardinality(p_states), 0) LOOP
    v_state := p_states[i];
    v_n := coalesce(p_ns[i], 0);
    IF v_state IN ('PENDING', 'QUEUED') THEN
      v_unstarted := v_unstarted + v_n;
    ELSIF v_state <> 'ISSUED' THEN
      v_finished := v_finished + v_n;
      IF v_state = 'FAILED' THEN
        v_failed := v_failed + v_n;
      END IF;
    END IF;
  END LOOP;
  IF v_finished >= p_total THEN
    RETURN CASE WHEN v_failed > 0 THEN 'COMPLETED_WITH_ERRORS' ELSE 'COMPLETED' END;
  END IF;
  -- Once a record was processed the batch stays IN_PROGRESS, even when a retry puts every
  -- record back in the outbox.
  IF v_unstarted >= p_total AND p_stored = 'QUEUED' THEN
    RETURN 'QUEUED';
  END IF;
  RETURN 'IN_PROGRESS';
END
$$;
COMMENT ON FUNCTION batch_state_of(text, boolean, bigint, text[], bigint[]) IS
  'A batch''s state from its stored state, whether it was cancelled, its number of records '
  'and its records per state (parallel arrays, as batch_counts_of returns them): CANCELLED, '
  'FAILED, COMPLETED(_WITH_ERRORS) once every record is finished, QUEUED before any record '
  'was processed, else IN_PROGRESS.';
