-- Every change of a record's state is checked against record_transitions. The WHEN clause is
-- evaluated without calling the function, so updates that keep the state (stamps, attempts)
-- cost nothing here, and neither do the three changes every issued record makes (PENDING ->
-- QUEUED -> ISSUED -> INVITED) or a worker's PENDING -> ISSUED: the function, a PL/pgSQL call
-- and a probe of record_transitions per row, was about 9 us a row, a twentieth of the
-- database's work per record. The pairs listed here must stay in record_transitions
-- (tests/batches/test_lifecycle.py holds them to it); every other change is looked up there.
CREATE OR REPLACE TRIGGER records_state_guard
  BEFORE UPDATE OF state ON records
  FOR EACH ROW
  WHEN (OLD.state IS DISTINCT FROM NEW.state
        AND (OLD.state, NEW.state) NOT IN (('PENDING', 'QUEUED'), ('QUEUED', 'ISSUED'),
                                           ('ISSUED', 'INVITED'), ('PENDING', 'ISSUED')))
  EXECUTE FUNCTION record_state_guard();
