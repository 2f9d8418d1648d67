-- A deleted QUEUED record is no longer in flight.
CREATE OR REPLACE TRIGGER records_in_flight_delete
  AFTER DELETE ON records REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_note_in_flight();
