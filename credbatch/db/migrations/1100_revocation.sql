-- 1100: revocation. A record whose credential was revoked is REVOKED (terminal), with the
-- reason and time of the revocation; its status list entry is set in the same transaction
-- (the status_lists_bits_changed trigger of 0800 then makes the list's token due).

ALTER TABLE records DROP CONSTRAINT records_state_check;
ALTER TABLE records ADD CONSTRAINT records_state_check
  CHECK (state IN ('PENDING', 'QUEUED', 'ISSUED', 'INVITED', 'FAILED', 'CANCELLED', 'CLAIMED',
                   'REVOKED'));
ALTER TABLE records
  ADD COLUMN revoke_reason text CHECK (length(revoke_reason) BETWEEN 1 AND 500),
  ADD COLUMN revoked_at timestamptz;
COMMENT ON COLUMN records.revoke_reason IS
  'Why the record''s credential was revoked (RevokeRecords); set with state REVOKED.';
COMMENT ON COLUMN records.revoked_at IS 'When the record''s credential was revoked.';
