-- Raises batch.<state> when a batch finishes or is cancelled, in the transaction of the
-- change.
CREATE OR REPLACE TRIGGER batches_webhook_events
  AFTER UPDATE ON batches REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_batch_events();
