-- A revocation's reason is free text about the holder: a purged record keeps none, whether it
-- was revoked before the purge (records_erase clears it) or after (RevokeRecords stores none).
UPDATE records SET revoke_reason = NULL WHERE purged_at IS NOT NULL AND revoke_reason IS NOT NULL;
ALTER TABLE records DROP CONSTRAINT records_purged_empty;
ALTER TABLE records ADD CONSTRAINT records_purged_empty CHECK (
  purged_at IS NULL
  OR (purge_reason IS NOT NULL AND email IS NULL AND phone IS NULL AND attributes = '{}'
      AND error_message IS NULL AND revoke_reason IS NULL
      AND state NOT IN ('PENDING', 'QUEUED', 'ISSUED')));
COMMENT ON COLUMN records.revoke_reason IS
  'Why the record''s credential was revoked (RevokeRecords); set with state REVOKED, and never '
  'on a purged record (free text about the holder).';
