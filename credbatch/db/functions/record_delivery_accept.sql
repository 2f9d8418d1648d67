-- A channel's delivery state starts with its send: when a record's email_sent_at or
-- sms_sent_at is first stamped the channel becomes ACCEPTED, and when a stamp is cleared (the
-- invitation is to be sent again) the channel's delivery and receipt code are cleared with it
-- (the resend deletes the old message's record_sends row, so its receipts find no record), and
-- a cleared email stamp begins the record's next email send (email_send, which the next
-- invitation's VERP token carries, so bounces of the old one are told apart). Whoever
-- stamps or clears (the worker's send log and outcome write, a resend) gets this without
-- knowing of it. A bounce that arrived before the stamp was written (a fast receiver, a
-- stamp window still open) is kept: ACCEPTED only replaces nothing.
-- Names are schema-qualified instead of a SET search_path clause, which would cost a
-- configuration save and restore on every row.
-- Executable by PUBLIC (no REVOKE): a trigger function cannot be called directly.
CREATE OR REPLACE FUNCTION record_delivery_accept() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  IF NEW.email_sent_at IS NULL AND OLD.email_sent_at IS NOT NULL THEN
    NEW.email_send := OLD.email_send + 1;
    NEW.email_delivery := NULL;
    NEW.email_delivery_code := NULL;
    NEW.email_delivery_diagnostic := NULL;
    NEW.email_delivery_at := NULL;
  ELSIF NEW.email_sent_at IS NOT NULL AND OLD.email_sent_at IS NULL THEN
    NEW.email_delivery := coalesce(NEW.email_delivery, 'ACCEPTED');
  END IF;
  IF NEW.sms_sent_at IS NULL AND OLD.sms_sent_at IS NOT NULL THEN
    NEW.sms_delivery := NULL;
    NEW.sms_delivery_code := NULL;
    NEW.sms_delivery_at := NULL;
  ELSIF NEW.sms_sent_at IS NOT NULL AND OLD.sms_sent_at IS NULL THEN
    NEW.sms_delivery := coalesce(NEW.sms_delivery, 'ACCEPTED');
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION record_delivery_accept() IS
  'Trigger function of records_delivery_accept: a channel stamped sent becomes ACCEPTED (a '
  'bounce already recorded stays); a cleared stamp clears the channel''s delivery state (and '
  'a cleared email stamp raises email_send).';
