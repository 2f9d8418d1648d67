-- Entries of the audit trail are never edited, and deleted only by the owner (audit_prune).
CREATE OR REPLACE TRIGGER audit_events_refuse_change
  BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
