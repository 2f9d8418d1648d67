-- One grant, one credential, and a c_nonce that costs no row until it is spent.
--
-- An access token now obtains one credential: the signer spends it (used_at) in the
-- transaction in which it signs. The nonce endpoint hands out stateless, MAC-ed nonces; the
-- table of issued nonces gives way to one of spent nonces, written by the credential request
-- only, each kept until the nonce would have expired anyway, so a nonce passes at most once.
-- Tokens issued before this migration start unused (one credential each, from now on); the
-- nonces handed out before it (at most five minutes' worth) go with their table, and a wallet
-- holding one gets invalid_nonce and fetches a new one.
ALTER TABLE oid4vci_access_tokens ADD COLUMN used_at timestamptz;
COMMENT ON COLUMN oid4vci_access_tokens.used_at IS
  'When the signer issued the credential this token was good for; a used token obtains '
  'nothing more.';

-- The signer marks the record CLAIMED as it spends the grant; the public role no longer may.
DROP FUNCTION IF EXISTS public_mark_claimed(uuid, bytea);
DROP FUNCTION IF EXISTS public_nonce_issue(uuid, bytea);
-- signer_grant_spend returns the stored credential with the grant it spends.
DROP FUNCTION IF EXISTS signer_stored_credential(uuid, uuid);
DROP TABLE oid4vci_nonces;

CREATE TABLE oid4vci_spent_nonces (
  tenant_id  uuid        NOT NULL,
  nonce_hash bytea       NOT NULL CHECK (octet_length(nonce_hash) = 32),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, nonce_hash)
);
COMMENT ON TABLE oid4vci_spent_nonces IS
  'c_nonce values (SHA-256) spent by a key proof, kept until they expire: a second proof with '
  'one conflicts here and is refused (invalid_nonce).';
CREATE INDEX oid4vci_spent_nonces_expiry_idx ON oid4vci_spent_nonces (expires_at);
ALTER TABLE oid4vci_spent_nonces ENABLE ROW LEVEL SECURITY;
ALTER TABLE oid4vci_spent_nonces FORCE ROW LEVEL SECURITY;
-- Only public_nonce_use (as the owner) touches it; no other role has a privilege on it.
DO $$
BEGIN
  EXECUTE format('CREATE POLICY oid4vci_spent_nonces_owner ON oid4vci_spent_nonces TO %I '
                 'USING (true) WITH CHECK (true)', current_user);
END
$$;
