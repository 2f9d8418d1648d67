-- OpenID for Verifiable Credential Issuance (pre-authorized code flow): the credential offers
-- the workers create at issuance, and the access tokens and c_nonces of the public token,
-- nonce and credential endpoints (a batch's claim_mode says whether its holders claim this
-- way). Every secret is stored as its SHA-256 only: a database reader learns no usable code,
-- token or nonce.

CREATE TABLE oid4vci_offers (
  tenant_id       uuid        NOT NULL,
  record_id       uuid        NOT NULL,
  code_hash       bytea       NOT NULL CHECK (octet_length(code_hash) = 32),
  tx_code_hash    bytea       CHECK (octet_length(tx_code_hash) = 32),
  expires_at      timestamptz NOT NULL,
  used_at         timestamptz,
  failed_attempts integer     NOT NULL DEFAULT 0 CHECK (failed_attempts >= 0),
  created_at      timestamptz NOT NULL DEFAULT now(),
  -- One offer per record: a re-sent invitation carries the same offer again.
  PRIMARY KEY (tenant_id, record_id),
  UNIQUE (tenant_id, code_hash),
  FOREIGN KEY (tenant_id, record_id) REFERENCES records (tenant_id, id)
);
COMMENT ON TABLE oid4vci_offers IS
  'The credential offer of a record of an OID4VCI batch, written with its credential. '
  'code_hash is the SHA-256 of the pre-authorized code, tx_code_hash that of the transaction '
  'code (NULL: none is asked; set when the batch invites by email and SMS, one carrying the '
  'link and the other the code). The code is exchanged once (used_at) before expires_at; '
  'failed_attempts counts wrong transaction codes, and five end the offer.';
ALTER TABLE oid4vci_offers ENABLE ROW LEVEL SECURITY;
ALTER TABLE oid4vci_offers FORCE ROW LEVEL SECURITY;
CREATE POLICY oid4vci_offers_isolation ON oid4vci_offers
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, UPDATE', 'TABLE oid4vci_offers');

CREATE TABLE oid4vci_access_tokens (
  tenant_id  uuid        NOT NULL,
  token_hash bytea       NOT NULL CHECK (octet_length(token_hash) = 32),
  record_id  uuid        NOT NULL,
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, token_hash),
  FOREIGN KEY (tenant_id, record_id) REFERENCES records (tenant_id, id)
);
COMMENT ON TABLE oid4vci_access_tokens IS
  'Access tokens of the token endpoint (SHA-256), each good for the credential of one record '
  'until expires_at.';
ALTER TABLE oid4vci_access_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE oid4vci_access_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY oid4vci_access_tokens_isolation ON oid4vci_access_tokens
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT', 'TABLE oid4vci_access_tokens');

CREATE TABLE oid4vci_nonces (
  tenant_id  uuid        NOT NULL,
  nonce_hash bytea       NOT NULL CHECK (octet_length(nonce_hash) = 32),
  expires_at timestamptz NOT NULL,
  used_at    timestamptz,
  PRIMARY KEY (tenant_id, nonce_hash)
);
COMMENT ON TABLE oid4vci_nonces IS
  'c_nonce values of the nonce endpoint (SHA-256): a key proof must carry one, unused and '
  'unexpired, and using it sets used_at, so a proof cannot be replayed.';
CREATE INDEX oid4vci_nonces_expiry_idx ON oid4vci_nonces (tenant_id, expires_at);
ALTER TABLE oid4vci_nonces ENABLE ROW LEVEL SECURITY;
ALTER TABLE oid4vci_nonces FORCE ROW LEVEL SECURITY;
CREATE POLICY oid4vci_nonces_isolation ON oid4vci_nonces
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, UPDATE, DELETE', 'TABLE oid4vci_nonces');
