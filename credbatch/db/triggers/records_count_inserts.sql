-- New records count into their batch's per-state counts (batch_count_deltas). One trigger
-- per event: a trigger with transition tables serves a single event.
CREATE OR REPLACE TRIGGER records_count_inserts
  AFTER INSERT ON records REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION records_count_changes();
