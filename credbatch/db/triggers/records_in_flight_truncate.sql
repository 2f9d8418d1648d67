-- TRUNCATE fires no row or transition-table trigger: empty dispatch_in_flight with records.
CREATE OR REPLACE TRIGGER records_in_flight_truncate
  AFTER TRUNCATE ON records
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_in_flight_truncate();
