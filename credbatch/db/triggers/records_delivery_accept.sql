-- Keeps each channel's delivery state in step with its sent stamp (record_delivery_accept).
-- The WHEN clause is evaluated without calling the function, so updates that leave both
-- stamps alone cost nothing here.
CREATE OR REPLACE TRIGGER records_delivery_accept
  BEFORE UPDATE OF email_sent_at, sms_sent_at ON records
  FOR EACH ROW
  WHEN (OLD.email_sent_at IS DISTINCT FROM NEW.email_sent_at
        OR OLD.sms_sent_at IS DISTINCT FROM NEW.sms_sent_at)
  EXECUTE FUNCTION record_delivery_accept();
