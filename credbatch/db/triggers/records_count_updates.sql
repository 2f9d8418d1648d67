-- A record's change of state moves it between its batch's per-state counts
-- (batch_count_deltas), whoever makes the change.
CREATE OR REPLACE TRIGGER records_count_updates
  AFTER UPDATE ON records REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION records_count_changes();
