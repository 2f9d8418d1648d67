-- A request id protects only the request it was first sent with: the digest of that request
-- (its header and content) is kept beside the key, and a later request with the same id but
-- another digest is refused instead of answered with the first result. Keys stored before this
-- migration, and kinds that keep no digest, have none and still match any retry.
ALTER TABLE idempotency_keys
  ADD COLUMN request_digest bytea CHECK (request_digest IS NULL OR length(request_digest) = 32);
COMMENT ON COLUMN idempotency_keys.request_digest IS
  'SHA-256 of the request the key was first used with (for an upload: its header and file); '
  'NULL when the kind keeps none or the key predates digests.';
