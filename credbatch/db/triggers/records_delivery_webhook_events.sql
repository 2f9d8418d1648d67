-- Raises record.bounced and record.delivered in the transaction of the bounce or receipt.
CREATE OR REPLACE TRIGGER records_delivery_webhook_events
  AFTER UPDATE ON records REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION webhook_delivery_events();
