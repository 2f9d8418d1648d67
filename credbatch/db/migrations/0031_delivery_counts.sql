-- A batch's delivered and bounced records are counted with its states, in the count rows
-- (records_count_changes, keys DELIVERED and BOUNCED), instead of from the records on every
-- read: GetBatch and ListBatches counted them through two partial indexes of records, so a
-- read cost a scan of the batch's delivered records (a 100,000-record batch: 100,000 index
-- entries per GetBatch), and the indexes grew with every invitation ever delivered.
--
-- The counts of the records stored so far are added here. Writers of records are held off
-- until this migration commits, so no change of a delivery state falls between the counts
-- read here and the trigger function (applied in the same run) that counts from now on.
LOCK TABLE records IN SHARE MODE;

INSERT INTO batch_count_deltas (tenant_id, batch_id, state, n, last_update)
SELECT tenant_id, batch_id, 'DELIVERED', count(*), NULL
FROM records
WHERE email_delivery = 'DELIVERED' OR sms_delivery = 'DELIVERED'
GROUP BY tenant_id, batch_id;

INSERT INTO batch_count_deltas (tenant_id, batch_id, state, n, last_update)
SELECT tenant_id, batch_id, 'BOUNCED', count(*), NULL
FROM records
WHERE email_delivery IN ('BOUNCED', 'FAILED') OR sms_delivery IN ('BOUNCED', 'FAILED')
GROUP BY tenant_id, batch_id;

DROP INDEX records_delivered_idx;
DROP INDEX records_bounced_idx;

COMMENT ON COLUMN batch_counts.state IS
  'A record state, or DELIVERED / BOUNCED: the batch''s records whose invitation was '
  'delivered / bounced or failed on some channel (a record counts once in its state and may '
  'count in either or both of these).';
COMMENT ON COLUMN batch_count_deltas.state IS
  'A record state, or DELIVERED / BOUNCED (as batch_counts.state).';
