-- What happened to each invitation after the relay or provider accepted it, per channel:
-- ACCEPTED when the send was stamped, then DELIVERED (a receipt), DEFERRED (a soft bounce),
-- BOUNCED (a hard bounce, or an SMS the carrier could not deliver) or FAILED (the SMS
-- provider gave up on it). NULL: nothing sent on that channel (yet). The record's state is
-- not touched: a bounce on a REVOKED or CLAIMED record is recorded and the record stays.
--
-- delivery_code is the enhanced status code of a bounce (5.1.1) or the provider's error code
-- (30003); delivery_diagnostic is the reason in the machine's words, with every address
-- removed before it is stored (credbatch.delivery.diagnostics). Neither holds personal data.

ALTER TABLE records
  ADD COLUMN email_delivery text
    CHECK (email_delivery IN ('ACCEPTED', 'DELIVERED', 'DEFERRED', 'BOUNCED', 'FAILED')),
  ADD COLUMN email_delivery_code text CHECK (length(email_delivery_code) <= 32),
  ADD COLUMN email_delivery_diagnostic text CHECK (length(email_delivery_diagnostic) <= 500),
  ADD COLUMN email_delivery_at timestamptz,
  ADD COLUMN sms_delivery text
    CHECK (sms_delivery IN ('ACCEPTED', 'DELIVERED', 'DEFERRED', 'BOUNCED', 'FAILED')),
  ADD COLUMN sms_delivery_code text CHECK (length(sms_delivery_code) <= 32),
  ADD COLUMN sms_delivery_at timestamptz;
COMMENT ON COLUMN records.email_delivery IS
  'Email invitation after the send: ACCEPTED, DELIVERED, DEFERRED, BOUNCED or FAILED; NULL '
  'when none was sent. Set ACCEPTED by records_delivery_accept, then by bounces and receipts.';
COMMENT ON COLUMN records.email_delivery_code IS
  'Enhanced status code of the last bounce or receipt (RFC 3463), e.g. 5.1.1.';
COMMENT ON COLUMN records.email_delivery_diagnostic IS
  'The reporting system''s diagnostic, addresses removed, at most 500 characters.';
COMMENT ON COLUMN records.sms_delivery IS
  'SMS invitation after the send: ACCEPTED, DELIVERED, BOUNCED (undelivered) or FAILED.';
COMMENT ON COLUMN records.sms_delivery_code IS 'The SMS provider''s ErrorCode of the receipt.';

-- A bounce names its record by id alone (the VERP token carries the record id and a MAC over
-- it, no tenant: an address has no room for both ids and a MAC); unique, so an id names one
-- record of one tenant and a MAC checked for it can reach no other tenant's row.
CREATE UNIQUE INDEX records_id_idx ON records (id);
-- GetBatch counts a batch's delivered and bounced records from these, which hold only the
-- records concerned.
CREATE INDEX records_delivered_idx ON records (tenant_id, batch_id)
  WHERE email_delivery = 'DELIVERED' OR sms_delivery = 'DELIVERED';
CREATE INDEX records_bounced_idx ON records (tenant_id, batch_id)
  WHERE email_delivery IN ('BOUNCED', 'FAILED') OR sms_delivery IN ('BOUNCED', 'FAILED');

ALTER TABLE webhook_endpoints DROP CONSTRAINT webhook_endpoints_event_types_check;
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_event_types_check
  CHECK (cardinality(event_types) >= 1 AND event_types <@ ARRAY[
    'batch.completed', 'batch.completed_with_errors', 'batch.cancelled', 'batch.failed',
    'record.failed', 'record.claimed', 'record.revoked', 'record.bounced',
    'record.delivered']);
