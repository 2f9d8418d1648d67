-- Every change of a record's state is checked against record_transitions. The WHEN clause is
-- evaluated without calling the function, so updates that keep the state (stamps, attempts)
-- cost nothing here.
CREATE OR REPLACE TRIGGER records_state_guard
  BEFORE UPDATE OF state ON records
  FOR EACH ROW
  WHEN (OLD.state IS DISTINCT FROM NEW.state)
  EXECUTE FUNCTION record_state_guard();
