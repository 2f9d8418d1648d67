-- TRUNCATE fires no row trigger: refused on its own unless the owner runs it.
CREATE OR REPLACE TRIGGER audit_events_refuse_truncate
  BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();
