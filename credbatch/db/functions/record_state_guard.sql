-- The one gate every change of records.state passes: a change that record_transitions does not
-- list is refused, whoever writes it (a service, a worker, the relay's functions, or psql).
-- A row trigger rather than a statement trigger over the transition tables: it needs no join
-- of old and new rows, so its cost stays one index probe per changed record on any statement.
-- Names are schema-qualified instead of a SET search_path clause, which would cost a
-- configuration save and restore on every row.
-- Executable by PUBLIC (no REVOKE): a trigger function cannot be called directly.
CREATE OR REPLACE FUNCTION record_state_guard() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM public.record_transitions t
                 WHERE t.from_state = OLD.state AND t.to_state = NEW.state) THEN
    RAISE EXCEPTION 'record % cannot change state from % to %', OLD.id, OLD.state, NEW.state
      USING ERRCODE = 'check_violation',
            CONSTRAINT = 'records_state_transition',
            HINT = 'The table record_transitions lists the legal changes.';
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION record_state_guard() IS
  'Trigger function of records_state_guard: refuses a change of records.state that '
  'record_transitions does not list (check_violation, constraint records_state_transition, '
  'naming the record and both states).';
