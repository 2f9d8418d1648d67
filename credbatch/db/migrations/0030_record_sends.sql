-- Each invitation the SMTP relay or SMS provider accepted, stamped within a few milliseconds
-- (workers.issuance.sent_log): a worker killed mid-group and redelivered sends only what has
-- no row here (nor a records.email_sent_at / sms_sent_at), which bounds duplicate invitations.
-- These stamps used to be an UPDATE of the records themselves: a new version of a wide row,
-- every index of records written again and four statement triggers run, for a fact the
-- record's outcome writes anyway a moment later. An insert into this narrow table costs a
-- fraction of that. No foreign key: its check would lock the record's row for each stamp.
-- A row is redundant once the record's outcome committed (records.*_sent_at then holds the
-- same fact) and the SMS's receipts have come (they name the message id kept here); the
-- resend of a record deletes its rows, so its invitation goes out again and a receipt of the
-- old message finds no record.
CREATE TABLE record_sends (
  tenant_id uuid        NOT NULL,
  record_id uuid        NOT NULL,
  medium    text        NOT NULL CHECK (medium IN ('EMAIL', 'SMS')),
  sent_at   timestamptz NOT NULL DEFAULT now(),
  -- The SMS provider's id of the message (MessageSid), which its status callbacks name.
  message_id text CHECK (length(message_id) BETWEEN 1 AND 64),
  PRIMARY KEY (tenant_id, record_id, medium)
);
-- Status callbacks find their record by the provider's message id alone (public_sms_delivery).
CREATE UNIQUE INDEX record_sends_message_id_idx ON record_sends (message_id)
  WHERE message_id IS NOT NULL;
COMMENT ON TABLE record_sends IS
  'Invitations accepted by the mail relay or SMS provider, stamped as they are accepted and '
  'before the record''s outcome is written: what a redelivered job must not send again.';
ALTER TABLE record_sends ENABLE ROW LEVEL SECURITY;
ALTER TABLE record_sends FORCE ROW LEVEL SECURITY;
CREATE POLICY record_sends_isolation ON record_sends
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, DELETE', 'TABLE record_sends');
