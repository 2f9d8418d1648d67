-- What issuance produces: tenants' signing keys, token status lists and their signed tokens,
-- the issued credentials and the rendered certificates.

CREATE TABLE signing_keys (
  tenant_id       uuid        NOT NULL REFERENCES tenants (id),
  kid             text        NOT NULL CHECK (length(kid) BETWEEN 1 AND 200),
  alg             text        NOT NULL CHECK (alg IN ('ES256', 'ES384', 'ES512', 'EdDSA')),
  public_jwk      jsonb       NOT NULL CHECK (jsonb_typeof(public_jwk) = 'object'),
  private_key_enc bytea       NOT NULL,
  nonce           bytea       NOT NULL CHECK (octet_length(nonce) = 12),
  active          boolean     NOT NULL DEFAULT true,
  created_at      timestamptz NOT NULL DEFAULT now(),
  kek_id          text        CHECK (kek_id ~ '^[0-9a-f]{16}$'),
  PRIMARY KEY (tenant_id, kid)
);
COMMENT ON TABLE signing_keys IS
  'Each tenant''s credential signing keys, created on first use. private_key_enc is the '
  'private key (PKCS#8 DER) encrypted with AES-256-GCM under the KEK from config, with '
  'nonce as the 96-bit GCM nonce; the tenant id should be the GCM associated data so a key '
  'cannot be moved to another tenant. Exactly one key per tenant is active (used to sign); '
  'inactive keys stay published in the issuer JWKS so older credentials still verify.';
-- Written by the workers when they create a key and by `credbatch keys rewrap`.
COMMENT ON COLUMN signing_keys.kek_id IS
  'First 16 hex digits of SHA-256("credbatch kek id v1\0" || KEK) of the KEK that wrapped '
  'private_key_enc (credbatch.signing.kek.kek_id); NULL when wrapped before it was recorded.';
-- At most one active key per tenant: two workers creating the first key concurrently
-- collide here, and the loser re-reads the winner's key.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (tenant_id) WHERE active;
ALTER TABLE signing_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE signing_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY signing_keys_isolation ON signing_keys
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, UPDATE', 'TABLE signing_keys');

CREATE TABLE status_lists (
  tenant_id      uuid        NOT NULL REFERENCES tenants (id),
  id             uuid        NOT NULL,
  size           integer     NOT NULL CHECK (size > 0),
  bits_per_entry smallint    NOT NULL DEFAULT 1 CHECK (bits_per_entry IN (1, 2, 4, 8)),
  next_index     integer     NOT NULL DEFAULT 0,
  bits           bytea       NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  index_key      bytea       CHECK (octet_length(index_key) = 32),
  PRIMARY KEY (tenant_id, id),
  CHECK (next_index BETWEEN 0 AND size),
  CHECK (octet_length(bits) = (size::bigint * bits_per_entry + 7) / 8)
);
COMMENT ON TABLE status_lists IS
  'IETF Token Status Lists of a tenant. bits holds size entries of bits_per_entry bits each '
  '(the token''s "bits"; 1 = VALID/INVALID, 2 adds SUSPENDED), uncompressed, in the '
  'specification''s order: entry i lives in byte i * bits_per_entry / 8, counted from the '
  'least significant bit (for 1 bit, PostgreSQL get_bit/set_bit(bits, i) address entry i). '
  'Serve it zlib-compressed as the token''s lst. Indexes are reserved by '
  'UPDATE ... SET next_index = next_index + n WHERE next_index + n <= size RETURNING; a '
  'full list (next_index = size) is replaced by a new one.';
COMMENT ON COLUMN status_lists.next_index IS 'First index not yet reserved for a credential.';
COMMENT ON COLUMN status_lists.index_key IS
  'Secret key of the permutation that maps the positions reserved in order to status list '
  'indexes (credbatch.signing.index_permutation), so an index does not tell when its '
  'credential was issued. NULL: the positions are the indexes.';
CREATE INDEX status_lists_open_idx ON status_lists (tenant_id, created_at)
  WHERE next_index < size;
ALTER TABLE status_lists ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_lists FORCE ROW LEVEL SECURITY;
CREATE POLICY status_lists_isolation ON status_lists
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, UPDATE', 'TABLE status_lists');

-- Least privilege for the public component: status list tokens are signed by the issuance
-- workers (which hold the KEK) and stored here; the public endpoints only read them.
CREATE TABLE status_list_tokens (
  tenant_id  uuid        NOT NULL,
  list_id    uuid        NOT NULL,
  token      text,
  expires_at timestamptz,
  due_at     timestamptz NOT NULL DEFAULT now(),
  signed_at  timestamptz,
  PRIMARY KEY (tenant_id, list_id),
  FOREIGN KEY (tenant_id, list_id) REFERENCES status_lists (tenant_id, id),
  CHECK ((token IS NULL) = (expires_at IS NULL))
);
COMMENT ON TABLE status_list_tokens IS
  'The signed statuslist+jwt of each status list, as served by the public endpoints. token '
  'is NULL until first signed. due_at is when it must be signed again: now() when the list '
  'is created or its bits change (the status_lists_* triggers), otherwise ttl seconds before '
  'expires_at (the token exp), so a served token stays valid for at least its own ttl claim. '
  'Issuance workers re-sign due rows, each row locked FOR UPDATE SKIP LOCKED by one worker.';
-- Due rows across tenants (status_list_tokens_due; not led by tenant_id: the refresher
-- serves every tenant).
CREATE INDEX status_list_tokens_due_idx ON status_list_tokens (due_at);
ALTER TABLE status_list_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE status_list_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY status_list_tokens_isolation ON status_list_tokens
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, UPDATE', 'TABLE status_list_tokens');

CREATE TABLE credentials (
  tenant_id      uuid        NOT NULL,
  id             uuid        NOT NULL,
  record_id      uuid        NOT NULL,
  batch_id       uuid        NOT NULL,
  kid            text        NOT NULL,
  status_list_id uuid        NOT NULL,
  status_index   integer     NOT NULL CHECK (status_index >= 0),
  sd_jwt         text        NOT NULL,
  claim_token    text        NOT NULL CHECK (length(claim_token) >= 16),
  expires_at     timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now(),
  claim_expires_at timestamptz NOT NULL DEFAULT now() + interval '30 days',
  PRIMARY KEY (tenant_id, id),
  -- A record never gets two credentials, however often its job is delivered.
  UNIQUE (tenant_id, record_id),
  UNIQUE (tenant_id, status_list_id, status_index),
  FOREIGN KEY (tenant_id, record_id) REFERENCES records (tenant_id, id),
  FOREIGN KEY (tenant_id, batch_id) REFERENCES batches (tenant_id, id),
  FOREIGN KEY (tenant_id, kid) REFERENCES signing_keys (tenant_id, kid),
  FOREIGN KEY (tenant_id, status_list_id) REFERENCES status_lists (tenant_id, id)
);
COMMENT ON TABLE credentials IS
  'Issued SD-JWT VCs (the full issuance: JWT ~ disclosures ~), one per record at most, with '
  'the signing key, the status list entry reserved for it, and the holder''s claim token.';
COMMENT ON COLUMN credentials.claim_token IS
  'Unguessable token of the holder''s claim page link; unique across tenants because the '
  'public URL carries no tenant.';
-- The default covers a writer that does not set the column.
COMMENT ON COLUMN credentials.claim_expires_at IS
  'When the holder''s claim link stops working (the public endpoints answer 410 Gone): '
  'issuance sets it from CREDBATCH_CLAIM_TTL.';
CREATE UNIQUE INDEX credentials_claim_token_key ON credentials (claim_token);
CREATE INDEX credentials_batch_idx ON credentials (tenant_id, batch_id);
ALTER TABLE credentials ENABLE ROW LEVEL SECURITY;
ALTER TABLE credentials FORCE ROW LEVEL SECURITY;
CREATE POLICY credentials_isolation ON credentials
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, UPDATE', 'TABLE credentials');

CREATE TABLE certificates (
  tenant_id  uuid        NOT NULL,
  id         text        NOT NULL CHECK (id ~ '^[A-Za-z0-9_-]{16,}$'),
  record_id  uuid        NOT NULL,
  pdf        bytea       NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, record_id),
  FOREIGN KEY (tenant_id, record_id) REFERENCES records (tenant_id, id)
);
COMMENT ON TABLE certificates IS
  'Rendered PDF certificates, one per record at most, served at Cred_URL = '
  '{PUBLIC_URL}/c/{id}. id is opaque, URL-safe and unguessable (e.g. 32 random bytes, '
  'base64url), unique across tenants because the URL carries no tenant.';
CREATE UNIQUE INDEX certificates_id_key ON certificates (id);
ALTER TABLE certificates ENABLE ROW LEVEL SECURITY;
ALTER TABLE certificates FORCE ROW LEVEL SECURITY;
CREATE POLICY certificates_isolation ON certificates
  USING (tenant_id = app_tenant()) WITH CHECK (tenant_id = app_tenant());
SELECT grant_app('SELECT, INSERT, UPDATE', 'TABLE certificates');
