-- A record inserted QUEUED (tests and bench fixtures do) is in flight: the claim's caps must
-- count it.
CREATE OR REPLACE TRIGGER records_in_flight_insert
  AFTER INSERT ON records REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_note_in_flight();
