-- Raises record.failed, .claimed, .revoked, .expired and .contact_updated in the transaction
-- of the change.
CREATE OR REPLACE TRIGGER records_webhook_events
  AFTER UPDATE ON records REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_record_events();
