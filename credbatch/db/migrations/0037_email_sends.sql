-- Which send of a record's email invitation is the current one. The VERP token of each
-- invitation carries this number (credbatch.delivery.verp), so a bounce of an earlier send,
-- arriving after the record was corrected or resent, is told apart from a bounce of the
-- invitation now out: public_email_deliveries records it as stale and the current send keeps
-- its state. record_delivery_accept raises the number whenever the email's sent stamp is
-- cleared (a resend or a correction: the invitation is to go out again); records invited
-- before this column existed are on send 0, which tokens without a number name.
ALTER TABLE records ADD COLUMN email_send integer NOT NULL DEFAULT 0 CHECK (email_send >= 0);
COMMENT ON COLUMN records.email_send IS
  'Number of the current send of the email invitation (0 first; raised by '
  'record_delivery_accept when the sent stamp is cleared); its VERP token names it.';
