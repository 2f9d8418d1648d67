-- ResendInvitations: an INVITED record goes back to the outbox (INVITED -> PENDING) and the
-- issuance worker sends its invitation again, without issuing again. For an OID4VCI batch the
-- record's offer is replaced: the resend moves the offer's code digest here and deletes the
-- offer and the record's access tokens; the worker stores the next generation's offer (new
-- pre-authorized code, new transaction code) when it sends the new invitation.

INSERT INTO record_transitions (from_state, to_state, why) VALUES
  ('INVITED', 'PENDING', 'ResendInvitations: the invitation is sent again (fresh offer)');

CREATE TABLE oid4vci_superseded_offers (
  tenant_id     uuid        NOT NULL,
  code_hash     bytea       NOT NULL CHECK (octet_length(code_hash) = 32),
  record_id     uuid        NOT NULL,
  generation    integer     NOT NULL CHECK (generation >= 0),
  superseded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, code_hash),
  -- One row per replaced offer; the next offer of the record is generation max + 1.
  UNIQUE (tenant_id, record_id, generation),
  FOREIGN KEY (tenant_id, record_id) REFERENCES records (tenant_id, id)
);
COMMENT ON TABLE oid4vci_superseded_offers IS
  'Offers replaced by ResendInvitations: the SHA-256 of the old pre-authorized code, so that '
  'the offer endpoint answers 410 Gone for it rather than 404; such a code is never exchanged '
  '(it is no longer in oid4vci_offers). generation numbers a record''s offers from 0, and the '
  'worker derives the codes of the record''s current offer from the next one.';
ALTER TABLE oid4vci_superseded_offers ENABLE ROW LEVEL SECURITY;
ALTER TABLE oid4vci_superseded_offers FORCE ROW LEVEL SECURITY;
CREATE POLICY oid4vci_superseded_offers_isolation ON oid4vci_superseded_offers
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT', 'TABLE oid4vci_superseded_offers');
-- The resend deletes the replaced offer and every access token obtained with it; the index
-- finds a record's tokens (the primary key is the token's digest).
SELECT grant_app('DELETE', 'TABLE oid4vci_offers');
SELECT grant_app('DELETE', 'TABLE oid4vci_access_tokens');
CREATE INDEX oid4vci_access_tokens_record_idx ON oid4vci_access_tokens (tenant_id, record_id);

-- What a ResendInvitations call did, by its request_id (idempotency_keys maps the request id
-- to this row's id): a retried call answers the same counts and resends nothing.
CREATE TABLE invitation_resends (
  tenant_id   uuid        NOT NULL REFERENCES tenants (id),
  id          uuid        NOT NULL,
  batch_id    uuid        NOT NULL,
  resent      integer     NOT NULL CHECK (resent >= 0),
  claimed     integer     NOT NULL CHECK (claimed >= 0),
  revoked     integer     NOT NULL CHECK (revoked >= 0),
  failed      integer     NOT NULL CHECK (failed >= 0),
  cancelled   integer     NOT NULL CHECK (cancelled >= 0),
  in_progress integer     NOT NULL CHECK (in_progress >= 0),
  busy        integer     NOT NULL CHECK (busy >= 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, batch_id) REFERENCES batches (tenant_id, id)
);
COMMENT ON TABLE invitation_resends IS
  'ResendInvitations calls made with a request_id: how many records each resent and how many '
  'it skipped, per reason, so that a retried call returns the first answer.';
ALTER TABLE invitation_resends ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitation_resends FORCE ROW LEVEL SECURITY;
CREATE POLICY invitation_resends_isolation ON invitation_resends
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT', 'TABLE invitation_resends');
