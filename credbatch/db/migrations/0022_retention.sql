-- Personal data is kept only as long as needed. A record's contact data (email, phone), its
-- attribute values, its error message (which may quote a value), its signed credential (whose
-- disclosures carry the attributes) and its rendered certificate are erased either when its
-- batch ended more than the tenant's retention period ago (the janitor, janitor_purge) or at
-- once when an org admin erases the holder (holder_records_erase). What stays: the record's
-- state and timestamps, its row number and error code, the batch counts, the credential's id,
-- signing key and status list entry (so the credential can still be revoked), and purged_at,
-- the marker. The same erasure serves both (records_erase).
--
-- The janitor (workers.janitor) connects as a role of its own (credbatch.db.migrate,
-- PROCESS_ROLES) that reaches rows only through the janitor_* functions: the purge and the
-- pruning cross tenants, so no tenant-scoped session may run them.

ALTER TABLE records ADD COLUMN purged_at timestamptz;
ALTER TABLE records ADD COLUMN purge_reason text
  CHECK (purge_reason IN ('RETENTION', 'ERASURE'));
COMMENT ON COLUMN records.purged_at IS
  'When the record''s personal data (email, phone, attributes, error message, credential '
  'body, certificate) was erased; NULL while it is kept.';
COMMENT ON COLUMN records.purge_reason IS
  'Why it was erased: RETENTION (its batch ended longer ago than the tenant''s retention '
  'period) or ERASURE (an org admin erased the holder on request).';
-- A purged record holds no personal data and never goes back to the outbox (a retry or a
-- resend of it would issue a credential with no data): enforced here, whoever writes.
ALTER TABLE records ADD CONSTRAINT records_purged_empty CHECK (
  purged_at IS NULL
  OR (purge_reason IS NOT NULL AND email IS NULL AND phone IS NULL AND attributes = '{}'
      AND error_message IS NULL AND state NOT IN ('PENDING', 'QUEUED', 'ISSUED')));

ALTER TABLE batches ADD COLUMN purged_at timestamptz;
COMMENT ON COLUMN batches.purged_at IS
  'When the retention purge erased the personal data of every record of the batch (set once '
  'no record is left to purge); NULL before.';
-- The purge's queue: ended batches not yet purged, oldest end first, across tenants (not led
-- by tenant_id: the janitor serves every tenant). Partial, so purged history costs nothing.
CREATE INDEX batches_purge_due_idx
  ON batches ((coalesce(completed_at, cancelled_at)))
  WHERE purged_at IS NULL AND state IN ('COMPLETED', 'COMPLETED_WITH_ERRORS', 'CANCELLED',
                                        'FAILED');
-- Erasure on request finds a holder's records by contact (as uploads normalise it), within
-- the tenant; an email address without regard to case, as the uploads' duplicate check
-- compares them. Partial: purged records (most of a long history) hold no contact.
CREATE INDEX records_email_idx ON records (tenant_id, lower(email)) WHERE email IS NOT NULL;
CREATE INDEX records_phone_idx ON records (tenant_id, phone) WHERE phone IS NOT NULL;
-- Pruning reads each table oldest first.
CREATE INDEX webhook_deliveries_completed_idx ON webhook_deliveries (completed_at)
  WHERE state <> 'PENDING';
CREATE INDEX webhook_events_created_idx ON webhook_events (created_at);
-- Only used offers are pruned on their own (the others go with their record's purge), so the
-- index holds only those: its scan never walks the unused offers of unclaimed records.
CREATE INDEX oid4vci_offers_expiry_idx ON oid4vci_offers (expires_at) WHERE used_at IS NOT NULL;
CREATE INDEX oid4vci_access_tokens_expiry_idx ON oid4vci_access_tokens (expires_at);
CREATE INDEX idempotency_keys_age_idx ON idempotency_keys (created_at);
CREATE INDEX invitation_resends_age_idx ON invitation_resends (created_at);
-- Zero counts left by finished batches, pruned: the index holds only those still to prune.
CREATE INDEX batch_counts_zero_idx ON batch_counts (tenant_id, batch_id) WHERE n = 0;

-- The owner runs the purge, the erasure and the pruning (SECURITY DEFINER); FORCE ROW LEVEL
-- SECURITY applies to it too, so it gets a policy for each write those functions make that
-- no earlier owner policy allows.
DO $$
BEGIN
  EXECUTE format('CREATE POLICY batches_owner_update ON batches FOR UPDATE TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
  EXECUTE format('CREATE POLICY credentials_owner_update ON credentials FOR UPDATE TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
  EXECUTE format('CREATE POLICY certificates_owner_delete ON certificates FOR DELETE TO %I '
                 'USING (true)', current_user);
  EXECUTE format('CREATE POLICY idempotency_keys_owner ON idempotency_keys TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
  EXECUTE format('CREATE POLICY invitation_resends_owner ON invitation_resends TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
  -- The purge reads each tenant's own retention period (tenant_retention_days).
  EXECUTE format('CREATE POLICY tenant_profiles_owner ON tenant_profiles FOR SELECT TO %I '
                 'USING (true)', current_user);
END
$$;

-- A webhook event is pruned once no delivery refers to it; this finds its deliveries (the
-- foreign key's check on delete uses it too).
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (tenant_id, event_id);
