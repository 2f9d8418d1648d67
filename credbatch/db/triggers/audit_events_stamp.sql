-- Entries are dated by the database when the application writes them.
CREATE OR REPLACE TRIGGER audit_events_stamp
  BEFORE INSERT ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_stamp();
