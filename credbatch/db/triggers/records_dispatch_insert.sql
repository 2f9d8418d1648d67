-- An upload's records arrive PENDING: their batch gets its fair-dispatch key (and its tenant
-- one), counted once per statement.
CREATE OR REPLACE TRIGGER records_dispatch_insert
  AFTER INSERT ON records REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_note_pending();
