-- Which key-encryption key wrapped each signing key: a short hash of the KEK (never the KEK),
-- written by the workers when they create a key and by `credbatch keys rewrap`. NULL for keys
-- wrapped before the id was recorded; rewrap fills it in.
ALTER TABLE signing_keys ADD COLUMN kek_id text CHECK (kek_id ~ '^[0-9a-f]{16}$');
COMMENT ON COLUMN signing_keys.kek_id IS
  'First 16 hex digits of SHA-256("credbatch kek id v1\0" || KEK) of the KEK that wrapped '
  'private_key_enc (credbatch.signing.kek.kek_id); NULL when wrapped before it was recorded.';
