-- Deleted records leave their batch's per-state counts (batch_count_deltas).
CREATE OR REPLACE TRIGGER records_count_deletes
  AFTER DELETE ON records REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION records_count_changes();
