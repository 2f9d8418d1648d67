-- Reminders: a batch may carry a schedule of days after the invitation (its upload's
-- reminder_days, else the tenant's default, tenant_profiles.reminder_days, resolved when the
-- batch is created); each holder who has not claimed by then gets a reminder on the batch's
-- channels, from the batch's reminder templates or the built-in reminder wording.
--
-- One row of record_reminders per INVITED record of a batch with a schedule, made by the
-- outcome write that invites the record (again after a resend or a correction: the schedule
-- starts over from the new invitation). The row holds the next step and when it is due; the
-- relay claims due rows (reminder_claim) through the tenants' dispatch keys and token
-- buckets, publishes a reminder job per row, and the worker, once the step is sent, moves the
-- row on to the next step (due_at NULL after the last). The per-channel stamps say which
-- step each channel was last sent, written as the provider accepts the message
-- (workers.issuance.sent_log), so a job delivered again sends no step twice.

ALTER TABLE batches ADD COLUMN reminder_days integer[]
  CHECK (cardinality(reminder_days) BETWEEN 1 AND 5
         AND 1 <= ALL (reminder_days) AND 90 >= ALL (reminder_days));
ALTER TABLE batches ADD COLUMN reminder_email_template_id uuid;
ALTER TABLE batches ADD COLUMN reminder_sms_template_id uuid;
COMMENT ON COLUMN batches.reminder_days IS
  'Days after the invitation at which a holder who has not claimed is reminded (ascending); '
  'the upload''s, else the tenant''s default when the batch was created; NULL = no reminders.';
COMMENT ON COLUMN batches.reminder_email_template_id IS
  'The email template of the batch''s reminders; NULL = the built-in reminder wording.';
COMMENT ON COLUMN batches.reminder_sms_template_id IS
  'The SMS template of the batch''s reminders; NULL = the built-in reminder wording.';

CREATE TABLE record_reminders (
  tenant_id  uuid        NOT NULL,
  record_id  uuid        NOT NULL,
  batch_id   uuid        NOT NULL,
  -- The next reminder to send, 1 = the first day of the schedule.
  step       smallint    NOT NULL CHECK (step >= 1),
  -- When it is due; NULL once the last step was sent (the row then only counts them).
  due_at     timestamptz,
  -- When the relay published its job (NULL = not in flight); a job lost for longer than the
  -- claim's stuck time is published again (the stamps keep it from sending twice).
  queued_at  timestamptz,
  -- The last step each channel's message was accepted for (0 = none yet).
  email_step smallint    NOT NULL DEFAULT 0,
  sms_step   smallint    NOT NULL DEFAULT 0,
  -- Reminders sent to the record (steps finished with at least one channel accepted).
  sent       smallint    NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, record_id),
  FOREIGN KEY (tenant_id, record_id) REFERENCES records (tenant_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE record_reminders IS
  'The reminder schedule of each invited record of a batch with reminder days: the next step, '
  'when it is due, and which step each channel was last sent.';
-- The claim reads the due rows oldest first, per tenant.
CREATE INDEX record_reminders_due_idx ON record_reminders (tenant_id, due_at)
  WHERE due_at IS NOT NULL;
CREATE INDEX record_reminders_batch_idx ON record_reminders (tenant_id, batch_id);
-- The reminders in flight (published, not finished), counted against the relay's cap on work
-- in flight: only they are in this index, so the count stays as small as the cap.
CREATE INDEX record_reminders_queued_idx ON record_reminders (queued_at)
  WHERE queued_at IS NOT NULL;
ALTER TABLE record_reminders ENABLE ROW LEVEL SECURITY;
ALTER TABLE record_reminders FORCE ROW LEVEL SECURITY;
CREATE POLICY record_reminders_isolation ON record_reminders
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, UPDATE, DELETE', 'TABLE record_reminders');
-- reminder_claim and reminder_mark_queued run as the owner, which FORCE ROW LEVEL SECURITY
-- holds to policies too.
DO $$
BEGIN
  EXECUTE format('CREATE POLICY record_reminders_owner ON record_reminders '
                 'TO %I USING (true) WITH CHECK (true)', current_user);
END
$$;
