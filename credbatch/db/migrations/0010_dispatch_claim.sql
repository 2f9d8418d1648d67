-- Fair dispatch: the working state of one claim (functions/outbox_claim.sql). It lives in the
-- claim's variables, for the length of one call, never in a table.

CREATE TYPE dispatch_batch_flight AS (
  tenant_id uuid,
  batch_id  uuid,
  records   bigint,
  last_row  integer
);
COMMENT ON TYPE dispatch_batch_flight IS
  'Fair dispatch, inside one claim: records of a batch in flight as the claim counts them, '
  'either QUEUED when it began (last_row 0) or taken by it from the batch, up to the CSV row '
  'last_row.';
REVOKE USAGE ON TYPE dispatch_batch_flight FROM PUBLIC;
