-- Webhook signing secrets sealed at rest. Every service connects as the application role,
-- which may read webhook_secrets, and a dump or a backup holds whatever the table holds; so a
-- secret is stored encrypted with AES-256-GCM under CREDBATCH_WEBHOOK_KEK, a key only the
-- webhook service (which seals it) and the dispatchers (which open it to sign) hold
-- (credbatch.webhooks.sealing). The plain-text column of databases migrated before becomes
-- legacy_secret: nothing writes it any more, the dispatchers refuse to sign with it, and
-- `credbatch webhooks rewrap-secrets` (as the owner, with the key) seals what it holds and
-- clears it.
ALTER TABLE webhook_secrets RENAME COLUMN secret TO legacy_secret;
ALTER TABLE webhook_secrets ALTER COLUMN legacy_secret DROP NOT NULL;
ALTER TABLE webhook_secrets
  ADD COLUMN secret_enc bytea,
  ADD COLUMN nonce      bytea CHECK (octet_length(nonce) = 12),
  ADD COLUMN kek_id     text  CHECK (kek_id ~ '^[0-9a-f]{16}$'),
  -- Sealed (all three set) or, before rewrap-secrets ran, plain text: one or the other.
  ADD CONSTRAINT webhook_secrets_sealed_or_legacy CHECK (
    num_nonnulls(secret_enc, nonce, kek_id) IN (0, 3)
    AND (secret_enc IS NULL) <> (legacy_secret IS NULL));
COMMENT ON TABLE webhook_secrets IS
  'Signing secrets of an endpoint (Standard Webhooks whsec_<base64>), sealed under the webhook '
  'KEK. Every secret not yet expired signs each delivery: a rotation gives the old secret an '
  'expires_at 24 hours on and adds a new one without, so receivers can switch over without '
  'losing a delivery.';
COMMENT ON COLUMN webhook_secrets.secret_enc IS
  'The whsec_ secret encrypted with AES-256-GCM under CREDBATCH_WEBHOOK_KEK (tag appended); '
  'the associated data binds it to tenant_id, endpoint_id and id '
  '(credbatch.webhooks.sealing).';
COMMENT ON COLUMN webhook_secrets.nonce IS 'The 96-bit GCM nonce of secret_enc.';
COMMENT ON COLUMN webhook_secrets.kek_id IS
  'First 16 hex digits of SHA-256("credbatch kek id v1\0" || key) of the key that sealed '
  'secret_enc (credbatch.signing.kek.kek_id).';
COMMENT ON COLUMN webhook_secrets.legacy_secret IS
  'Plain text of a secret stored before secrets were sealed; NULL once '
  '`credbatch webhooks rewrap-secrets` sealed it. Never written by the application.';
