-- Records entering QUEUED (the relay's mark) or leaving it (a worker's outcome, a cancel,
-- the sweeper) keep dispatch_in_flight equal to the records in flight.
CREATE OR REPLACE TRIGGER records_in_flight_update
  AFTER UPDATE ON records REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_note_in_flight();
