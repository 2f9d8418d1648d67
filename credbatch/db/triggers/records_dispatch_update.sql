-- Records that become PENDING again (RetryFailedRecords, the sweeper) go back into their
-- batch's fair-dispatch key, counted once per statement.
CREATE OR REPLACE TRIGGER records_dispatch_update
  AFTER UPDATE ON records REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION dispatch_note_pending();
