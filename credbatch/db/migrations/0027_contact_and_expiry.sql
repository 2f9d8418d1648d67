-- Corrections and expiry. An issuer may change an invited (or failed, or expired) record's
-- email or phone (UpdateRecordContact): the record goes back to the outbox and is invited
-- again at the new address, with a new claim link and a new offer; the old ones answer 410.
-- A claim link whose time ran out unclaimed makes its record EXPIRED (the relay's expiry
-- sweep, sweep_expired); a resend or a correction makes it PENDING again with a new link.

ALTER TABLE records DROP CONSTRAINT records_state_check;
ALTER TABLE records ADD CONSTRAINT records_state_check
  CHECK (state IN ('PENDING', 'QUEUED', 'ISSUED', 'INVITED', 'FAILED', 'CANCELLED',
                   'CLAIMED', 'REVOKED', 'EXPIRED'));

INSERT INTO record_transitions (from_state, to_state, why) VALUES
  ('INVITED', 'EXPIRED', 'expiry sweep: the claim link ran out unclaimed'),
  ('EXPIRED', 'PENDING', 'ResendInvitations or UpdateRecordContact: invited again, new link'),
  ('EXPIRED', 'REVOKED', 'RevokeRecords');

ALTER TABLE records ADD COLUMN expired_at timestamptz;
ALTER TABLE records ADD COLUMN contact_updated_at timestamptz;
COMMENT ON COLUMN records.expired_at IS
  'When the expiry sweep found the record''s claim link run out unclaimed (state EXPIRED).';
COMMENT ON COLUMN records.contact_updated_at IS
  'When UpdateRecordContact last changed the record''s email or phone (the audit trail, '
  'action record.contact_update, says who and which field).';

-- The expiry sweep walks the INVITED records oldest invitation first: a claim link's time
-- is fixed before its invitation goes out, so the oldest invitations hold the links that run
-- out first. Across tenants (not led by tenant_id: the sweep serves every tenant).
CREATE INDEX records_invited_idx ON records (invited_at) WHERE state = 'INVITED';

-- Claim links replaced by UpdateRecordContact: the SHA-256 of the old claim token, so the
-- public endpoints answer 410 Gone for it (public_claim_gone) rather than 404. The new
-- address gets a new token; the old one may have gone to someone else.
CREATE TABLE superseded_claim_tokens (
  tenant_id     uuid        NOT NULL,
  token_hash    bytea       NOT NULL CHECK (octet_length(token_hash) = 32),
  record_id     uuid        NOT NULL,
  superseded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, token_hash),
  FOREIGN KEY (tenant_id, record_id) REFERENCES records (tenant_id, id)
);
COMMENT ON TABLE superseded_claim_tokens IS
  'Claim tokens replaced when a record''s contact changed (SHA-256 only): the claim page and '
  'download answer 410 Gone for them.';
ALTER TABLE superseded_claim_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE superseded_claim_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY superseded_claim_tokens_isolation ON superseded_claim_tokens
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT', 'TABLE superseded_claim_tokens');
-- public_claim_gone runs as the owner, which FORCE ROW LEVEL SECURITY holds to policies too.
DO $$
BEGIN
  EXECUTE format('CREATE POLICY superseded_claim_tokens_owner ON superseded_claim_tokens '
                 'FOR SELECT TO %I USING (true)', current_user);
END
$$;

ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_event_types_check;
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_event_types_check
  CHECK (cardinality(event_types) >= 1 AND event_types <@ ARRAY[
    'batch.completed', 'batch.completed_with_errors', 'batch.cancelled', 'batch.failed',
    'record.failed', 'record.claimed', 'record.revoked', 'record.bounced',
    'record.delivered', 'record.expired', 'record.contact_updated']);
